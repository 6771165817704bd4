package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The promises the simulator checks after every step. Each has a short name, used in
// violation reports, docs/simulation.md and docs/guarantees.md.
const (
	invLeaseWithinLife = "lease-within-life"         // a read returns ≥ 10 s of life, a lease of 1 s..life (≥ 10 s unless the role's ttl is lower)
	invTokenValid      = "token-valid"               // a token read is valid at Naver, for at least as long as the read says
	invOwnAccount      = "own-account"               // a role's read returns a token of its own client, type and account
	invNaverCompliant  = "naver-compliant"           // Naver records no needless, concurrent or non-compliant request, and no penalty
	invOneFlight       = "one-request-per-key"       // at most one token request per key is in flight
	invKeyBudget       = "key-budget"                // no key sends more than max_token_requests_per_hour in any hour (since a restart)
	invCountedWhenSent = "counted-when-sent"         // the plugin counts each attempt at an instant it can have left at
	invBackoff         = "backoff"                   // after a failed request a key waits at least 5 s before asking again
	invStaleWarned     = "stale-warned"              // a token served while its renewal is failing carries a warning
	invRecovers        = "recovers"                  // 65 minutes after every fault ended, a read of a healthy role succeeds
	invNoSecret        = "no-secret"                 // no client secret, signature or fragment in a response, log line, status or metrics
	invNoInternalError = "no-internal-error"         // no request fails with an internal error unless storage failed under it
	invCachedNamed     = "cached-keys-named"         // status counts as cached only keys some role names
	invStorageSwept    = "storage-swept"             // no stored token outlives its expiry by more than the sweep bound
	invStatusTruthful  = "status-truthful"           // status does not say the next read asks Naver while it backs off
	invRoleWrites      = "role-writes"               // every acknowledged role write is kept: concurrent writes lose no update
	invDamagedRole     = "damaged-role"              // an unreadable role never breaks status or other roles, and can be deleted or overwritten
	invServedAlive     = "served-alive"              // a served token has ≥ 10 s left at Naver, and its lease does not outlive it there
	invRetryAfter      = "retry-after"               // a key does not ask Naver before the Retry-After of Naver's last answer to it ended
	invAppBudget       = "app-budget"                // the application's requests in any sliding hour stay within max_application_requests_per_hour or the automatic budget
	invAppCounts       = "app-counts-true"           // status's count of the application's requests is what was sent, plus at most 8 a minute before a restart
	invServedAtOnce    = "served-at-once"            // a token in Naver's window with 5+ minutes left is served at once, its renewal behind the read
	invOldAddress      = "old-credentials-forgotten" // after client_secret or base_url changes, nothing that failed under the old ones refuses a read or a verification
	invBadInput        = "bad-input-refused"         // a write with a value the README refuses is refused, and a refused role write changes nothing
)

// Invariants lists every check with its one-line statement.
var Invariants = []struct{ Name, Statement string }{
	{invLeaseWithinLife, "a read returns at least 10 s of life; a lease is ≥ 1 s and ≤ the token's life (≥ 10 s unless the role's ttl is lower)"},
	{invTokenValid, "a token read is valid at Naver, for at least as long as the read says (expires_in ≤ Naver's remaining life)"},
	{invOwnAccount, "a role's read returns a token of its own client, type and account"},
	{invNaverCompliant, "the emulator records no needless, concurrent or non-compliant request and no penalty; the application stays under Naver's hourly limit (one request is excused for a key whose new token a restart lost because storing it had failed)"},
	{invOneFlight, "at most one token request per key is in flight at a time"},
	{invKeyBudget, "no key sends more HTTP requests than max_token_requests_per_hour in any sliding hour (counted since the plugin started), each at the instant the plugin counted it (see counted-when-sent)"},
	{invCountedWhenSent, "the instant the plugin says a key's budget counted an attempt (AttemptCountedAt) lies between when the model saw the request signed (its timestamp + 5 s; for a retry, a second after the last answer) and when it reached the network: a plugin cannot hide an attempt from the key's budget by counting it early"},
	{invBackoff, "after a failed request (or an answer whose token cannot be served) a key waits at least 5 s before asking again"},
	{invStaleWarned, "a token served while the key's last request failed, and the token is in Naver's 30-minute window, carries a warning"},
	{invRecovers, "65 minutes after every fault ended, a read of a healthy role with valid credentials succeeds; a read through a many-seller role refused for max_new_accounts_per_hour (at any time) finds that many accounts refused by Naver in the hour before"},
	{invNoSecret, "no client secret, signature or 12-character fragment of one appears in a response, warning, error, log line, status or metrics"},
	{invNoInternalError, "no request fails with an internal error unless storage failed under it"},
	{invCachedNamed, "status (keys=true, every page) counts as cached only keys some role names: a role write or delete evicts the keys it leaves unnamed before it returns (no check while a role is damaged: nothing tells the plugin storage damaged it)"},
	{invStorageSwept, "no stored entry holds its token past the token's expiry by more than the hourly sweep (plus two periodic runs), and no entry outlives it, or once it holds no token (its fact) the 3 hours its key counts in the automatic budget after Naver's answer, by more"},
	{invStatusTruthful, "status/<role> does not say the next read asks Naver while the key backs off"},
	{invRoleWrites, "every acknowledged role write is kept: of two concurrent writes, the result is one of the two orders"},
	{invDamagedRole, "an unreadable role entry never breaks status or other roles, and an operator can delete or overwrite it"},
	{invServedAlive, "a token served has at least 10 s left in Naver's own view (the emulator's record of its real expiry) when the read returns, and its lease does not outlive it there (a token Naver killed counts once a drop or config write told the plugin)"},
	{invRetryAfter, "a key sends no request (a retry included) before the Retry-After of Naver's last answer to it ended (at most 5 minutes, the README's ceiling), across drops; a restart or new credentials forget it; a config write's verification is not the key's"},
	{invAppBudget, "the application's token requests in any sliding hour (verification, retries and renewals included, across restarts) stay within max_application_requests_per_hour, or the automatic 30 + 2 per token in use (keys Naver issued a token to within 3 hours that a role names; the check counts, to be safe, every key issued a token that was read or issued one within 3 hours or has a live token; as large as when any request of the hour was sent)"},
	{invAppCounts, "status's application_requests_last_hour (counted across restarts) is never below the requests sent in its 61 minutes, and above them by at most 8 for each minute up to the hour's last restart that had a request or a restart (the count-ahead reserve, at most 8 a minute across processes); a read refused by the application budget finds it spent by those counts, with 30 + 2 per key a role names that Naver issued a token to within 3 hours"},
	{invServedAtOnce, "with background_refresh, a read whose key's newest token has 5 minutes (or the role's min_remaining_ttl) to 30 minutes left at Naver, known to the plugin (stored, not dropped, same credentials), is served that token at once (its renewal runs behind the read)"},
	{invOldAddress, "once the credentials changed (client_secret, base_url: what tokens and back-offs belong to), a read of a key that has not failed since is not refused by a back-off of the old ones (README: \"a failure of the old secret never delays the new one\"); once base_url names another address, nor by the old address's pace, nor by its breaker after the new address answered; and a config write moving base_url from an address that does not answer to one that does is not refused without asking it"},
	{invBadInput, "a write with a value the README refuses (one per generated invalid action) is refused; a refused role write leaves the role as it was"},
}

// Violation is one broken promise.
type Violation struct {
	Invariant string
	At        time.Time
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("[%s] at %s: %s", v.Invariant, fmtOffset(v.At.Sub(epoch)), v.Detail)
}

// violate records a broken promise once per invariant and subject. Under w.mu.
func (w *world) violate(inv, subject, format string, args ...any) {
	if w.seen[inv+"\x00"+subject] {
		return
	}
	w.seen[inv+"\x00"+subject] = true
	w.violations = append(w.violations, Violation{Invariant: inv, At: w.now(), Detail: fmt.Sprintf(format, args...)})
}

func (w *world) report(inv, subject, format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violate(inv, subject, format, args...)
}

// checkRead checks one token read through role r (the model before the read); dropsBefore
// is world.dropsDone when the read started.
func (w *world) checkRead(a *app, name string, r roleModel, failedBefore bool, readStart time.Time, dropsBefore uint64, resp *logical.Response, err error, storageFault bool) {
	// Two reads of a concurrent pair may be checked at once (the gate let the first go on).
	w.mu.Lock()
	w.stats.Reads++
	w.mu.Unlock()
	if err != nil && !isCoded(err) {
		if !storageFault && !r.damaged {
			w.report(invNoInternalError, "read", "app%d read token/%s: %v", a.idx, name, err)
		}
		return
	}
	if err != nil || resp == nil || resp.IsError() {
		w.checkFailedRead(a, name, r, resp, err, storageFault)
		return
	}
	w.mu.Lock()
	w.stats.ReadsServed++
	w.mu.Unlock()
	w.scanResponse(resp, fmt.Sprintf("app%d read token/%s", a.idx, name))
	tok, _ := resp.Data["access_token"].(string)
	left := time.Duration(asInt(resp.Data["expires_in"])) * time.Second
	if left < minServableLife {
		w.report(invLeaseWithinLife, "life", "app%d role %s: served a token with %s left", a.idx, name, left)
	}
	if resp.Secret != nil {
		ttl := resp.Secret.TTL
		floor := minServableLife
		if r.ttl > 0 && r.ttl < floor {
			floor = r.ttl
		}
		if r.uncertain {
			// A write of the role races the read (a concurrent pair, or storage failed its
			// read-back): the role's ttl, which may set the lease under 10 s, is unknown.
			floor = time.Second
		}
		if ttl < time.Second || ttl > left || ttl < floor && ttl < left {
			w.report(invLeaseWithinLife, "lease", "app%d role %s: lease %s for a token with %s left (role ttl %s)", a.idx, name, ttl, left, r.ttl)
		}
	}
	// Judged on absolute times: the clock may have moved since the read (a renewal
	// behind it met latency).
	expiresAt, _ := time.Parse(time.RFC3339, fmt.Sprint(resp.Data["expires_at"]))
	// A copy: a drop running concurrently (a concurrent action) updates the original.
	var iss *issuedToken
	w.mu.Lock()
	if p := w.issued[tok]; p != nil {
		c := *p
		iss = &c
	}
	lost := w.lostTokens[tok]
	w.mu.Unlock()
	switch {
	case iss == nil:
		w.report(invTokenValid, "unknown:"+name, "app%d role %s: served a token Naver never issued", a.idx, name)
		return
	case iss.killed && iss.droppedBy != 0 && iss.droppedBy <= dropsBefore:
		w.report(invTokenValid, "dead:"+name, "app%d role %s: served a token that was killed at Naver and dropped (expires_in %s)%s", a.idx, name, left, a.recent(r.key()))
	case iss.gen < a.gen && a.cfgSecret == a.secret:
		// A rotation revokes tokens at Naver; until the new secret is written to config
		// the plugin cannot know, but after it must not serve them.
		w.report(invTokenValid, "rotated:"+name, "app%d role %s: served a token of the secret replaced in config", a.idx, name)
	case expiresAt.After(iss.expires.Add(time.Second)) && !lost:
		w.report(invTokenValid, "outlives:"+name, "app%d role %s: served expires_at %s, but Naver's token dies at %s (%s earlier)%s", a.idx, name,
			expiresAt.Format(time.RFC3339), iss.expires.Format(time.RFC3339), expiresAt.Sub(iss.expires).Round(time.Second), a.recent(r.key()))
	}
	if !r.uncertain && (iss.app != a.idx || iss.key != r.key()) {
		w.report(invOwnAccount, name, "app%d role %s (%s) was served the token of app%d key %s", a.idx, name, r.key(), iss.app, iss.key)
	}
	naverLeft := iss.expires.Sub(readStart)
	w.mu.Lock()
	k := a.key(r.key())
	failedAfter := k.everFetch && !k.lastOK && k.lastAt.After(k.resetAt) && k.inFlight == 0
	w.mu.Unlock()
	if failedBefore && failedAfter && naverLeft < refreshWindow-time.Minute && len(resp.Warnings) == 0 {
		w.report(invStaleWarned, name, "app%d role %s: served a token with %s left at Naver while its renewal fails (%s), without a warning%s", a.idx, name, naverLeft.Round(time.Second), k.lastError, a.recent(r.key()))
	}
}

// checkFailedRead: a failed read is fine while anything is wrong; once every fault has
// been over for recoveryBound, a healthy role must be served.
func (w *world) checkFailedRead(a *app, name string, r roleModel, resp *logical.Response, err error, storageFault bool) {
	msg := errText(resp, err)
	w.mu.Lock()
	w.stats.FailedReads[failedReadReason(msg)]++
	w.mu.Unlock()
	w.scanText(msg, fmt.Sprintf("app%d read token/%s error", a.idx, name))
	if !r.exists || r.damaged || r.uncertain || !a.configured || a.cfgSecret != a.secret || !a.baseOK || storageFault || !w.authorised(a, r) {
		return
	}
	now := w.now()
	if strings.Contains(msg, "max_application_requests_per_hour") {
		// The application's budget binds when its requests of the hour are spent; a
		// refusal short of that counts requests never sent, or too small a budget.
		w.checkAppBudgetRefusal(a, name, msg, now)
		return
	}
	if w.checkNewAccountsRefusal(a, name, r, msg, now) {
		return
	}
	w.mu.Lock()
	writing := a.cfgWriting > 0
	w.mu.Unlock()
	if writing {
		// A config write is under way: the plugin may read with the credentials it writes
		// (stored before its tokens are retired), which the model learns when it returns.
		return
	}
	calm := w.calmSince(a)
	if now.Sub(calm) >= recoveryBound {
		w.report(invRecovers, name, "app%d role %s: read failed %s after every fault ended: %s", a.idx, name, now.Sub(calm).Round(time.Second), msg)
	}
}

// failedReadReason sorts a failed read's error into a few kinds, for the campaign's table.
func failedReadReason(msg string) string {
	for _, r := range []struct{ contains, reason string }{
		{"does not exist", "no such role"},
		{"application budget", "the application budget"},
		{"max_token_requests_per_hour", "the key's budget"},
		{"not configured", "no config"},
		{"config", "config"},
		{"answers to this application were failures", "Naver failing (the breaker)"},
		{"not asking Naver again before", "the key's back-off after a failure"},
		{"storage", "storage"},
	} {
		if strings.Contains(msg, r.contains) {
			return r.reason
		}
	}
	return "Naver's answer or none"
}

// calmSince is when the last fault that could make app's reads fail ended, or the last
// operator change that may legitimately cost a request.
func (w *world) calmSince(a *app) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	calm := epoch
	for _, f := range w.faults {
		end := f.until
		if f.kind == faultStorage && f.app != a.idx {
			continue
		}
		if end.After(calm) {
			calm = end
		}
	}
	for _, t := range []time.Time{a.lastConfigChange, a.lastStorageFault, w.lastBurst} {
		if t.After(calm) {
			calm = t
		}
	}
	if st, ok := w.emu.Penalty(a.clientID); ok && st.Until.After(calm) {
		calm = st.Until
	}
	return calm
}

// recent describes a key's recent history for a violation report, with what the model
// noted of the key (see noteKey).
func (a *app) recent(keyID string) string {
	notes := a.w.notesOf(fmt.Sprint(a.idx) + "|" + keyID)
	return fmt.Sprintf(" (key %s%s; last operator actions: %s)", keyID, notes, strings.Join(a.history, "; "))
}

// noteKey notes what happened to key id ("app|TYPE|account") for the violations of it
// that may follow (once per note).
func (w *world) noteKey(id, note string) {
	w.notesMu.Lock()
	defer w.notesMu.Unlock()
	if !slices.Contains(w.keyNotes[id], note) {
		w.keyNotes[id] = append(w.keyNotes[id], note)
	}
}

// notesOf returns the notes of key id, each after a space.
func (w *world) notesOf(id string) string {
	w.notesMu.Lock()
	defer w.notesMu.Unlock()
	if len(w.keyNotes[id]) == 0 {
		return ""
	}
	return " " + strings.Join(w.keyNotes[id], " ")
}

// checkNaver turns what the emulator recorded into violations.
func (w *world) checkNaver() {
	vs := w.emu.Violations()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := w.stats.naverViolationsSeen; i < len(vs); i++ {
		if w.excusedIdx[i] {
			continue // excused as it happened (see excuseNeedless)
		}
		if w.lostTokenAskedFor(vs[i]) {
			w.excusedNaver = append(w.excusedNaver, vs[i])
			continue
		}
		if a := w.tooManyByOperator(vs[i]); a != nil {
			w.excusedNaver = append(w.excusedNaver, vs[i])
			w.stats.Faults["too-many-excused-operator-budget"]++
			w.emu.Pardon(a.clientID, w.naverNow().Add(-time.Hour))
			continue
		}
		var ctx []string
		note := ""
		for _, a := range w.apps {
			if strings.Contains(vs[i], a.clientID) {
				ctx = append(ctx, a.history...)
			}
			if rest, ok := strings.CutPrefix(vs[i], "needless token request: "+a.clientID+"|"); ok {
				keyID, _, _ := strings.Cut(rest, " asked")
				note = w.notesOf(fmt.Sprint(a.idx) + "|" + keyID)
				if w.verificationLost[w.latest[fmt.Sprint(a.idx)+"|"+keyID]] {
					note += " " + noteVerificationLost
				}
			}
		}
		w.violate(invNaverCompliant, fmt.Sprint(i), "naver recorded: %s%s (last operator actions: %s)", vs[i], note, strings.Join(ctx, "; "))
	}
	w.stats.naverViolationsSeen = len(vs)
	for _, a := range w.apps {
		if st, ok := w.emu.Penalty(a.clientID); ok && !a.penaltyLogged {
			a.penaltyLogged = true
			if w.excused(st.Reason) {
				continue
			}
			w.violate(invNaverCompliant, "penalty"+a.clientID, "app%d penalised by Naver: %s", a.idx, st.Reason)
		}
	}
}

// tooManyByOperator is the application an emulator finding of too many token requests is
// of, when an operator had set its max_application_requests_per_hour above Naver's limit
// within the hour (see operatorAboveNaver); nil otherwise. Under w.mu.
func (w *world) tooManyByOperator(finding string) *app {
	for _, a := range w.apps {
		if strings.HasPrefix(finding, fmt.Sprintf("too many token requests: client %q", a.clientID)) && w.operatorAboveNaver(a, w.now()) {
			return a
		}
	}
	return nil
}

// lostTokenAskedFor reports whether an emulator finding is the needless request a
// restarted backend could not avoid: the key's newest token was issued before the restart,
// but storing it had failed, so the new backend never learnt of it (seed 357). Excused
// once per loss, and only while Naver still holds that token. Under w.mu.
func (w *world) lostTokenAskedFor(finding string) bool {
	for _, a := range w.apps {
		for id, tok := range w.lostAtRestart {
			app, keyID, _ := strings.Cut(id, "|")
			if app != fmt.Sprint(a.idx) || !strings.HasPrefix(finding, "needless token request: "+a.clientID+"|"+keyID+" asked again") {
				continue
			}
			delete(w.lostAtRestart, id)
			return tok != "" && w.latest[id] == tok
		}
	}
	return false
}

// excused reports whether a penalty's reason is a finding lostTokenAskedFor excused. Under w.mu.
func (w *world) excused(reason string) bool {
	for _, f := range w.excusedNaver {
		if strings.Contains(f, reason) || strings.Contains(reason, f) {
			return true
		}
	}
	return false
}

// checkOperatorView reads status, every role's status and metrics as an operator would,
// and checks what they say.
func (w *world) checkOperatorView(a *app) {
	// status lists its keys only when asked (keys=true), in pages. A key no role names can
	// only be cached after a role changed (a read needs a role that names its key, and a
	// renewal checks that one does), so the list is asked for in the views of the hour
	// after a change; the summary otherwise (listing a hundred keys every half hour was
	// a tenth of a long run's cost).
	listKeys := w.now().Sub(a.lastRoleChange) <= time.Hour
	query := map[string]any{"keys": listKeys, "limit": statusPage}
	for page := 0; ; page++ {
		resp, err, sf := a.request(logical.ReadOperation, "status", query)
		if err != nil && !sf && !isCoded(err) {
			w.report(invDamagedRole, "status", "app%d status failed: %v (damaged roles: %v)", a.idx, err, a.damagedNames())
		}
		if resp == nil {
			break
		}
		w.scanResponse(resp, fmt.Sprintf("app%d status", a.idx))
		if keys, ok := resp.Data["keys"].([]map[string]any); ok && !sf && !a.lastStorageFault.After(a.lastRoleChange) {
			w.checkCachedNamed(a, keys)
		}
		if n, ok := resp.Data["application_requests_last_hour"]; ok && page == 0 && !sf {
			w.mu.Lock()
			w.checkAppCounts(a, int(asInt(n)), w.now())
			w.mu.Unlock()
		}
		next, _ := resp.Data["next_after"].(string)
		if next == "" || page >= 100 {
			break
		}
		query = map[string]any{"keys": listKeys, "limit": statusPage, "after": next}
	}
	var names []string
	sellers := w.sellersToView(a)
	for n, r := range a.roles {
		if !r.exists {
			continue
		}
		if !r.many() || r.damaged {
			names = append(names, n)
			continue
		}
		for _, account := range sellers {
			if r.allows(account) {
				names = append(names, n+"/"+account)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		r := a.readModel(n)
		if !r.exists && !r.damaged {
			continue
		}
		resp, err, sf := a.request(logical.ReadOperation, "status/"+n, nil)
		if err != nil && !sf && !isCoded(err) && !r.damaged {
			w.report(invDamagedRole, "status/"+n, "app%d status/%s of a healthy role failed: %v (damaged roles: %v)", a.idx, n, err, a.damagedNames())
		}
		if resp == nil || resp.IsError() {
			continue
		}
		w.scanResponse(resp, fmt.Sprintf("app%d status/%s", a.idx, n))
		if until, ok := resp.Data["backoff_until"].(string); ok {
			t, _ := time.Parse(time.RFC3339, until)
			for _, warn := range resp.Warnings {
				if strings.Contains(warn, "next read") && strings.Contains(warn, "asks Naver") && t.After(w.now()) {
					w.report(invStatusTruthful, n, "app%d status/%s says %q while backoff_until is %s", a.idx, n, warn, until)
				}
			}
		}
	}
	if resp, err, _ := a.request(logical.ReadOperation, "metrics", nil); err == nil && resp != nil {
		w.scanResponse(resp, fmt.Sprintf("app%d metrics", a.idx))
	}
	w.scanText(w.logs.unscanned(), "the log")
}

// checkStatusKeys reads status's keys (every page) and checks that those it counts as cached
// are named by a role: after a restart (a start checks the tokens it loads) and after a
// role write or delete raced another request, when a key can be cached that no role names.
func (w *world) checkStatusKeys(a *app, note string) {
	query := map[string]any{"keys": true, "limit": statusPage}
	for page := 0; page < 100; page++ {
		resp, err, sf := a.request(logical.ReadOperation, "status", query)
		if err != nil || sf || resp == nil || resp.IsError() {
			return
		}
		if keys, ok := resp.Data["keys"].([]map[string]any); ok && !a.lastStorageFault.After(a.lastRoleChange) {
			w.checkCachedNamed(a, keys, " "+note)
		}
		next, _ := resp.Data["next_after"].(string)
		if next == "" {
			return
		}
		query = map[string]any{"keys": true, "limit": statusPage, "after": next}
	}
}

// statusPage is how many keys the operator view asks status for at once (status's most).
const statusPage = 1000

// checkCachedNamed checks that status counts as cached only keys some role names.
func (w *world) checkCachedNamed(a *app, keys []map[string]any, notes ...string) {
	for _, r := range a.roles {
		// A damaged role names nothing, but nothing tells the plugin that storage damaged
		// it: its key stays cached until a role change or the token's expiry.
		if r.uncertain || r.exists && r.damaged {
			return
		}
	}
	ids := make([]string, len(keys))
	w.mu.Lock()
	w.stats.cachedNamedKeys += len(keys)
	w.mu.Unlock()
	for i, k := range keys {
		ids[i] = fmt.Sprint(k["type"]) + "|" + fmt.Sprint(k["account_id"])
	}
	for i, k := range keys {
		id := ids[i]
		// A SELF token that verified the config is cached on purpose (README).
		if k["cached"] == true && !a.names(id) && id != "SELF|" {
			w.report(invCachedNamed, id, "app%d status counts key %s as cached, but no role names it%s%s", a.idx, id, strings.Join(notes, ""), a.recent(id))
		}
	}
}

// sellersToView picks the sellers of the many-seller role whose status/sellers/<account>
// the operator view reads: every seller whose last request the simulator saw fail (a key
// backs off only after one, which is where status-truthful can break), and a few more in
// turn, so that every seller's status is read and scanned for secrets now and then.
// Reading all of them every half hour would be most of a long run's cost.
func (w *world) sellersToView(a *app) []string {
	pool := w.p.sellerPool()
	if pool == 0 {
		return nil
	}
	out := map[string]bool{}
	var failing []string
	w.mu.Lock()
	for i := 0; i < pool; i++ {
		if k := a.keys["SELLER|"+manySellerID(a.idx, i)]; k != nil && !k.lastOK {
			failing = append(failing, manySellerID(a.idx, i))
		}
	}
	w.mu.Unlock()
	// Failing sellers by turns too, a few a view: after an onboarding storm of refused
	// accounts, viewing each of them every hour was most of a seed's operator view.
	const failingInTurn = 6
	for i := 0; i < min(failingInTurn, len(failing)); i++ {
		out[failing[(a.failTurn+i)%len(failing)]] = true
	}
	a.failTurn += failingInTurn
	const inTurn = 4
	for i := 0; i < inTurn; i++ {
		out[manySellerID(a.idx, (a.viewTurn+i)%pool)] = true
	}
	a.viewTurn += inTurn
	return sortedKeys(out)
}

func (a *app) damagedNames() []string {
	var out []string
	for n, r := range a.roles {
		if r.exists && r.damaged {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// checkStorage looks at what the app keeps in storage.
func (w *world) checkStorage(a *app) {
	if a.lastStorageFault.After(w.now().Add(-3 * time.Hour)) {
		return
	}
	ctx := context.Background()
	keys, err := logical.CollectKeysWithPrefix(ctx, a.storage, "tokens/")
	if err != nil {
		return
	}
	seen := make(map[string]storedExpiry, len(keys))
	for _, k := range keys {
		e, err := a.storage.Get(ctx, k)
		if err != nil || e == nil {
			continue
		}
		// An entry unchanged since the last check has the expiry read then: decoding every
		// stored token every half hour was a tenth of a long run's cost.
		latest, ok := time.Time{}, false
		if prev, found := a.storedExpiries[k]; found && bytes.Equal(prev.value, e.Value) {
			latest, ok = prev.latest, true
		}
		if !ok {
			var fields map[string]any
			if json.Unmarshal(e.Value, &fields) != nil {
				continue
			}
			latest = latestTime(fields)
		}
		seen[k] = storedExpiry{value: e.Value, latest: latest}
		if !latest.IsZero() && w.now().Sub(latest) > sweepBound && w.now().Sub(a.lastRestart) > sweepBound {
			w.report(invStorageSwept, k, "app%d keeps %s in storage %s after its expiry", a.idx, k, w.now().Sub(latest).Round(time.Minute))
		}
	}
	a.storedExpiries = seen
}

// storedExpiry is a stored token entry as checkStorage last read it.
type storedExpiry struct {
	value  []byte
	latest time.Time
}

// latestTime is the latest RFC 3339 time among a stored entry's fields: its expiry,
// whatever the entry's format calls it; for the fact of a token (no token in it), also the
// end of the 3 hours its key counts in the automatic budget after Naver answered with it
// (README: "until the latest moment its token may expire (at most 3 hours after it was
// issued)", and the budget counts keys issued a token within 3 hours across restarts).
func latestTime(fields map[string]any) time.Time {
	var latest time.Time
	for name, v := range fields {
		s, ok := v.(string)
		if !ok || !strings.Contains(name, "expir") {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.After(latest) {
			latest = t
		}
	}
	if tok, _ := fields["access_token"].(string); tok == "" && fields["fingerprint"] != nil {
		if s, ok := fields["fetched_at"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.Add(tokenLife).After(latest) {
				latest = t.Add(tokenLife)
			}
		}
	}
	return latest
}

// scanResponse checks a response for secrets; a token read's access_token is its own.
func (w *world) scanResponse(resp *logical.Response, where string) {
	var b strings.Builder
	for k, v := range resp.Data {
		if k == "access_token" {
			continue
		}
		b.WriteString(k)
		b.WriteByte('=')
		writeText(&b, v)
		b.WriteByte('\n')
	}
	for _, warn := range resp.Warnings {
		b.WriteString(warn + "\n")
	}
	w.scanText(b.String(), where)
}

// writeText writes the text a secret could hide in: every string in v, map keys too, one
// a line. Numbers, booleans and times hold none; formatting a status of a hundred keys
// with fmt was most of the operator view's own cost.
func writeText(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil, bool, int, int64, uint64, float64, time.Duration:
	case string:
		b.WriteString(v)
		b.WriteByte('\n')
	case []string:
		for _, s := range v {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	case []any:
		for _, e := range v {
			writeText(b, e)
		}
	case map[string]any:
		for k, e := range v {
			b.WriteString(k)
			b.WriteByte('\n')
			writeText(b, e)
		}
	case []map[string]any:
		for _, e := range v {
			writeText(b, e)
		}
	default:
		fmt.Fprintf(b, "%v\n", v)
	}
}

func (w *world) scanText(s, where string) {
	if s == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for secret := range w.secrets {
		if strings.Contains(s, secret) {
			w.violate(invNoSecret, where+"secret", "%s contains a client secret", where)
		}
	}
	// A fragment lies within a run of standard base64 characters at least 12 long: look
	// only there (most text is words and numbers).
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isBase64(s[j]) {
			j++
		}
		if j-i >= fragmentLen && w.fragments.in(s[i:j]) {
			w.violate(invNoSecret, where+"sig", "%s contains a 12-character fragment of a signature", where)
			return
		}
		i = j + 1
	}
}

func isBase64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// isCoded reports whether err is one Vault answers with its own status (a 4xx), not 500:
// a coded error, or a user error (a field's value that does not convert).
func isCoded(err error) bool {
	var coded logical.HTTPCodedError
	var user errutil.UserError
	return errors.As(err, &coded) || errors.As(err, &user) || errors.Is(err, logical.ErrUnsupportedPath) || errors.Is(err, logical.ErrUnsupportedOperation)
}

func errText(resp *logical.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	if resp != nil {
		return resp.Error().Error()
	}
	return ""
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}
