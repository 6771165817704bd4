package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
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

// checkOldAddress: a read refused for what failed under credentials the config no longer
// has (README: "Back-offs and tokens belong to the credentials they were made with: a
// failure of the old secret never delays the new one"; base_url is one of them): by the
// key's back-off while the key has not failed since client_secret or base_url changed;
// by the application's breaker or the key's pace (which are about Naver failing) only
// when base_url named another address since the last failure, and for the breaker once
// the new address answered (a breaker that keeps refusing until its next probe after a
// success at the same address is documented). The pace holds a key while it or the
// application fails at the address the config has (core's admit: "Naver fails at this
// address: one paced attempt"), and counts every attempt of the key's hour, those sent
// to the old address too: a read paced after another key failed there since the change
// is the new address's pace (seed 1041, long), unless the key has not asked since the
// change and its hour is not full: then only what it owed the old address's pace can
// hold it. Under no lock.
func (w *world) checkOldAddress(a *app, name string, r roleModel, msg string) {
	if !strings.Contains(msg, "not asking Naver") || strings.Contains(msg, "the limit set by max_token_requests_per_hour") || strings.Contains(msg, "application budget") ||
		strings.Contains(msg, "max_new_accounts_per_hour") { // checkNewAccountsRefusal's
		return
	}
	w.mu.Lock()
	answered, at, pair, writing := a.lastAnswered, a.lastRequestAt, w.pairActive, a.cfgWriting > 0
	credChanged, baseChanged := a.credChangedAt, a.baseChangedAt
	keyFailedAt, lastAttempt, inHour := time.Time{}, time.Time{}, 0
	if k := a.keys[r.key()]; k != nil {
		keyFailedAt = k.failedAt
		for _, t := range k.attempts {
			// A minute more than the hour: the read was refused before this check.
			if w.now().Sub(t) < time.Hour+time.Minute {
				inHour++
			}
		}
		if n := len(k.attempts); n > 0 {
			lastAttempt = k.attempts[n-1]
		}
	}
	burst, _ := core.Pacing(a.perHour)
	hourFull := inHour >= max(a.perHour-1, burst) // core's nextPaced
	lastFailed := a.lastFailedAt
	w.mu.Unlock()
	if pair || writing || !a.baseOK || a.cfgSecret != a.secret {
		return
	}
	if !r.exists || r.uncertain || r.damaged {
		// The model does not know which key the role names (a write whose read-back storage
		// failed): it cannot tell when that key last failed.
		return
	}
	breaker := strings.Contains(msg, "answers to this application were failures")
	paced := strings.Contains(msg, "Naver is failing, and meanwhile")
	switch {
	case breaker && answered && !baseChanged.IsZero() && baseChanged.After(lastFailed):
		w.report(invOldAddress, name, "app%d read token/%s refused by the breaker (%s), but base_url named another address (%s) since the application's last failed request (%s), and its last request (%s) was answered%s",
			a.idx, name, msg, fmtOffset(baseChanged.Sub(epoch)), fmtOffset(lastFailed.Sub(epoch)), fmtOffset(at.Sub(epoch)), a.recent(""))
	case paced && !baseChanged.IsZero() && baseChanged.After(keyFailedAt) &&
		(baseChanged.After(lastFailed) || !lastAttempt.After(baseChanged) && !hourFull):
		w.report(invOldAddress, name, "app%d read token/%s refused by the pace of failures at the address base_url left at %s (the key has not failed since): %s%s",
			a.idx, name, fmtOffset(baseChanged.Sub(epoch)), msg, a.recent(r.key()))
	case !breaker && !paced && !credChanged.IsZero() && credChanged.After(keyFailedAt):
		w.report(invOldAddress, name, "app%d read token/%s refused by the back-off of a failure under the credentials replaced at %s (the key has not failed since): %s%s",
			a.idx, name, fmtOffset(credChanged.Sub(epoch)), msg, a.recent(r.key()))
	}
}

// checkVerificationRefused: a config write that points base_url at an address that answers,
// from one that did not, was refused without asking it, for what failed at the old address
// (its breaker, the SELF key's back-off or pace): the operator cannot fix the address with
// verification.
func (w *world) checkVerificationRefused(a *app, data map[string]any, msg string) {
	base, ok := data["base_url"].(string)
	if !ok || !strings.Contains(msg, "not asking Naver") || strings.Contains(msg, "the limit set by max_token_requests_per_hour") || strings.Contains(msg, "application budget") {
		return
	}
	newOK, newHost := baseState(base)
	_, oldHost := baseState(a.cfgBase)
	if !newOK || a.baseOK || newHost == oldHost || !a.configured {
		return
	}
	w.report(invOldAddress, "verify "+newHost, "app%d config write pointing base_url at %s (from %s) was refused without asking it: %s%s", a.idx, base, a.cfgBase, msg, a.recent(""))
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
