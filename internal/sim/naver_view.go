package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Checks of what the plugin served against Naver's own view: the emulator knows each
// token's real expiry and which token it would hand back now.

// maxBackoff is the longest back-off the README promises to honour Naver's Retry-After
// with ("at most 5 minutes; longer when Naver's Retry-After asks for more").
const maxBackoff = 5 * time.Minute

// servedAtOnceFloor: a token in Naver's window with at least this much left is served at
// once, its renewal behind the read (README, "Background refresh").
const servedAtOnceFloor = 5 * time.Minute

// windowMargin keeps the served-at-once check off the edges of the window, where the
// plugin's view of a token's life (whole seconds of expires_in) and Naver's may differ.
const windowMargin = time.Minute

// readExpectation is what the model expects of one read, decided when it starts.
type readExpectation struct {
	// atOnce is the token the read must be served without waiting for Naver ("" when
	// nothing is expected): the key's newest token, in Naver's window with 5 minutes or
	// more, known to the plugin.
	atOnce string
	left   time.Duration
}

// expectAtOnce decides whether a read of key through role r, starting now, must be served
// the key's newest token at once. Under w.mu.
func (w *world) expectAtOnce(a *app, r roleModel, now time.Time) readExpectation {
	if !r.exists || r.damaged || r.uncertain || !a.configured || !a.ahead || a.cfgWriting > 0 || !a.baseOK || w.pairActive {
		return readExpectation{}
	}
	id := fmt.Sprint(a.idx) + "|" + r.key()
	tok := w.latest[id]
	iss := w.issued[tok]
	if iss == nil || iss.killed || iss.verification || iss.gen != a.gen || iss.cred != a.credGen || w.lostAtRestart[id] == tok || w.pendingLoss[id] {
		return readExpectation{}
	}
	k := a.keys[r.key()]
	if k == nil || k.droppedAt.After(iss.at) {
		return readExpectation{}
	}
	left := iss.expires.Sub(now)
	if left < max(servedAtOnceFloor, r.minTTL)+windowMargin || left > refreshWindow-windowMargin {
		return readExpectation{}
	}
	return readExpectation{atOnce: tok, left: left}
}

// checkServedAtOnce: the read expected exp and was served tok.
func (w *world) checkServedAtOnce(a *app, name string, r roleModel, exp readExpectation, tok string) {
	if exp.atOnce == "" || tok == exp.atOnce {
		return
	}
	w.report(invServedAtOnce, name, "app%d role %s: its token had %s left at Naver (in the 30-minute window, 5 minutes or more), but the read waited for Naver and was served a new one; the README serves it at once and renews behind the read%s",
		a.idx, name, exp.left.Round(time.Second), a.recent(r.key()))
}

// checkServedAlive compares a served token with Naver's view of its life when the plugin
// answered: at least 10 s left, and a lease that does not outlive it. The moment the
// plugin answered is when its expires_in was true of its expires_at, which a concurrent
// renewal's latency cannot move (the read started at start). A token Naver killed (a
// seller re-authorised, a rotation) is the plugin's to learn only by a drop or a config
// write: token-valid judges those.
func (w *world) checkServedAlive(a *app, name string, r roleModel, iss *issuedToken, dropsBefore uint64, start time.Time, resp *logical.Response) {
	if iss.killed && (iss.droppedBy == 0 || iss.droppedBy > dropsBefore) || iss.gen < a.gen {
		return
	}
	expiresAt, err := time.Parse(time.RFC3339, fmt.Sprint(resp.Data["expires_at"]))
	if err != nil {
		return // token-valid and lease-within-life judge an answer without one
	}
	answered := expiresAt.Add(-time.Duration(asInt(resp.Data["expires_in"])) * time.Second)
	if answered.Before(start) {
		answered = start
	}
	const rounding = 2 * time.Second // expires_at and expires_in are whole seconds
	left := iss.expires.Sub(answered)
	if left < minServableLife-rounding {
		w.report(invServedAlive, "life:"+name, "app%d role %s: served a token with %s left at Naver (at least %s promised)%s",
			a.idx, name, left.Round(time.Second), minServableLife, a.recent(r.key()))
	}
	if resp.Secret != nil && resp.Secret.TTL > left+rounding {
		w.report(invServedAlive, "lease:"+name, "app%d role %s: lease %s for a token with %s left at Naver%s",
			a.idx, name, resp.Secret.TTL, left.Round(time.Second), a.recent(r.key()))
	}
}

// checkBreakerTruthful: a read refused by the application's breaker (Naver failing) for
// failures at an address the config no longer names: base_url changed since the last
// failed request and the application's last request (a verification of the new address)
// was answered, or the refusal names the old address. (A breaker that keeps refusing until
// its next probe after a success at the same address is documented: "served within a
// probe interval of Naver's recovery".) Under no lock.
func (w *world) checkBreakerTruthful(a *app, name, msg string) {
	if !strings.Contains(msg, "answers to this application were failures") {
		return
	}
	w.mu.Lock()
	answered, at, pair, writing := a.lastAnswered, a.lastRequestAt, w.pairActive, a.cfgWriting > 0
	moved := a.baseChangedAt.After(a.lastFailedAt)
	w.mu.Unlock()
	if pair || writing {
		return
	}
	switch {
	case answered && moved:
		w.report(invBreakerTruthful, name, "app%d read token/%s refused by the breaker (%s), but base_url changed since the application's last failed request (%s), and its last request (%s) was answered%s",
			a.idx, name, msg, fmtOffset(a.lastFailedAt.Sub(epoch)), fmtOffset(at.Sub(epoch)), a.recent(""))
	case a.baseOK && a.oldHost != "" && strings.Contains(msg, a.oldHost):
		w.report(invBreakerTruthful, name, "app%d read token/%s refused by the breaker of an address the config no longer names (%s): %s%s",
			a.idx, name, a.oldHost, msg, a.recent(""))
	}
}

// excuseNeedless: Naver handed back got, a token it issued before, to app a's key. The
// request was needless by a choice the README documents, not a defect, when the operator
// dropped that very token with force=true ("Risk: ... the next read's request is
// needless"), or when the token belongs to credentials the config no longer has (a change
// of client_secret or base_url "stops serving every cached token", also when it is changed
// back). Its finding is excused and the penalty it started pardoned, so the run goes on
// with an application Naver does not limit; each is counted in the campaign's table.
func (w *world) excuseNeedless(a *app, id, keyID, got string, since time.Time) {
	w.mu.Lock()
	forced := w.forcedLive[id] == got
	delete(w.forcedLive, id)
	iss := w.issued[got]
	otherCredentials := iss != nil && iss.cred != a.credGen
	seen := w.stats.naverViolationsSeen
	w.mu.Unlock()
	if !forced && !otherCredentials {
		return
	}
	finding := "needless token request: " + a.clientID + "|" + keyID + " asked again"
	vs := w.emu.Violations()
	for i := len(vs) - 1; i >= seen; i-- {
		if !strings.HasPrefix(vs[i], finding) {
			continue
		}
		w.mu.Lock()
		if !w.excusedIdx[i] {
			w.excusedIdx[i] = true
			w.excusedNaver = append(w.excusedNaver, vs[i])
			if forced {
				w.stats.Faults["needless-excused-forced-drop"]++
			} else {
				w.stats.Faults["needless-excused-other-credentials"]++
			}
		}
		w.mu.Unlock()
		w.emu.Pardon(a.clientID, since)
		return
	}
}
