package sim

import (
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// Storms: many requests of one kind in a few minutes (new sellers onboarded at once, a
// crash loop), and the lease operations Vault sends for a token read's lease.

func (w *world) storm(a *app, act Action) {
	w.mu.Lock()
	w.stats.Faults["op-"+act.Kind]++
	w.mu.Unlock()
	w.remember(a, fmt.Sprintf("%s %s %s n=%d", fmtOffset(w.now().Sub(epoch)), act.Kind, act.Role, act.N))
	switch act.Kind {
	case actOnboard:
		if !w.ensureManyRole(a, act.Role) {
			return
		}
		pool := w.p.sellerPool()
		for i := 0; i < act.N; i++ {
			account := manySellerID(a.idx, (act.Skip+i)%pool)
			if act.S == "guess" || act.S == "mixed" && i%2 == 1 {
				account = guessID(a.idx, act.Skip+i)
			}
			w.read(a, act.Role+"/"+account)
			w.clock.Advance(act.D)
			w.settle()
		}
	case actRestartStorm:
		if !w.ensureManyRole(a, act.Role) {
			return
		}
		pool := w.p.sellerPool()
		for i := 0; i < act.N; i++ {
			a.start()
			w.read(a, act.Role+"/"+manySellerID(a.idx, (act.Skip+i)%pool))
			w.clock.Advance(act.D)
			w.settle()
		}
	case actLease:
		w.lease(a, act.B)
	}
}

// settle checks what the emulator recorded and lets faults end, between a storm's steps
// (runWorld does it between actions).
func (w *world) settle() {
	w.expireFaults()
	w.checkNaver()
}

// ensureManyRole makes role a many-seller role serving the pool (sellers: its glob; the
// wild role: "*") if the model says it is not; it reports whether it is one.
func (w *world) ensureManyRole(a *app, role string) bool {
	r := a.roles[role]
	if r != nil && r.exists && !r.damaged && !r.uncertain && r.many() && r.allows(manySellerID(a.idx, 0)) {
		return true
	}
	if !a.configured {
		return false
	}
	allowed := fmt.Sprintf("ncp_app%d_many*", a.idx)
	if role == wildRole {
		allowed = "*"
	}
	w.writeRoleAPI(a, role, map[string]any{"type": "SELLER", "account_id": "", "allowed_account_ids": allowed}, false, map[string]any{"allowed_account_ids": allowed})
	r = a.roles[role]
	return r != nil && r.exists && r.many()
}

// lease renews or revokes the lease of the last token read, as Vault would when its
// holder asks: a renewal is refused (leases are not renewable), a revocation ends the lease
// only; neither asks Naver anything or fails with an internal error.
func (w *world) lease(a *app, renew bool) {
	w.mu.Lock()
	served := a.lastServed
	w.mu.Unlock()
	if served == nil || served.Secret == nil {
		return
	}
	op := logical.RevokeOperation
	if renew {
		op = logical.RenewOperation
	}
	before := w.requestsSent()
	b, view := a.current()
	req := &logical.Request{Operation: op, Path: "", Secret: served.Secret, Data: served.Data, Storage: view, MountPoint: mount}
	w.turn.Unlock() // as app.request: the backend's work may run the other action of a pair
	resp, err := b.HandleRequest(w.ctx, req)
	w.turn.Lock()
	if err != nil && !isCoded(err) && err != logical.ErrUnsupportedOperation {
		w.report(invNoInternalError, "lease-"+string(op), "app%d lease %s failed: %v", a.idx, op, err)
	}
	if resp != nil {
		w.scanResponse(resp, fmt.Sprintf("app%d lease %s", a.idx, op))
	}
	if n := w.requestsSent() - before; n > 0 {
		w.report(invNaverCompliant, "lease-"+string(op), "app%d lease %s sent %d token request(s) to Naver", a.idx, op, n)
	}
	w.mu.Lock()
	w.stats.Faults["op-lease-"+string(op)]++
	w.mu.Unlock()
}

// requestsSent is how many token requests reached the transport so far.
func (w *world) requestsSent() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats.NaverRequests
}
