package core

import (
	"fmt"
	"time"
)

// A key's reads: served from what the key knows, or after the one request that decides
// when to ask Naver (decide), and answered with the token or the failure.

// pendingRead is a read waiting for its answer.
type pendingRead struct {
	id      ReadID
	ks      *keyState
	role    string
	minLife time.Duration
	// newAccounts is the role's bound on accounts without a token (0: not a many-seller read).
	newAccounts int
}

// result is what a request (or a decision not to send one) gives the reads waiting on it.
type result struct {
	token *Token
	// fetched: the token came from a request made for this read (or one it joined).
	fetched bool
	// renewErr: renewing failed (or was not allowed) but the token still had life to serve.
	renewErr *Failure
	// backingOff: renewErr is an earlier failure shared during its back-off.
	backingOff bool
	err        error
	// noted: the renewal's end was counted already (complete does it for a request).
	noted bool
}

func (m *Machine) read(e Read) {
	if m.closing {
		m.emit(Fail{Read: e.ID, Err: ErrClosing})
		return
	}
	if m.cfg == nil {
		m.emit(Fail{Read: e.ID, Err: ErrNotConfigured})
		return
	}
	ks := m.key(e.Key)
	r := &pendingRead{id: e.ID, ks: ks, role: e.Role, minLife: max(e.MinLife, MinServableLife)}
	r.newAccounts = e.NewAccountsPerHour
	ks.minLife = max(ks.minLife, r.minLife)
	if e.Now.Sub(ks.lastRead) > time.Second || ks.lastRead.IsZero() {
		ks.lastRead = e.Now
	}
	m.reads[r.id] = r
	m.evalRead(r, e.Now)
}

func (m *Machine) readGone(e ReadGone) {
	r, ok := m.reads[e.ID]
	if !ok {
		return
	}
	delete(m.reads, e.ID)
	if w := r.ks.waits; w != nil {
		w.waitLoad = removeID(w.waitLoad, e.ID)
		w.waitReq = removeID(w.waitReq, e.ID)
		r.ks.tidyWaits()
	}
}

func removeID[T comparable](ids []T, id T) []T {
	for i, x := range ids {
		if x == id {
			return append(ids[:i:i], ids[i+1:]...)
		}
	}
	return ids
}

// evalRead decides what read r gets now: a token at once, a wait for a load or a request,
// or a failure.
func (m *Machine) evalRead(r *pendingRead, now time.Time) {
	ks := r.ks
	if m.cfg == nil {
		m.failRead(r, ErrNotConfigured)
		return
	}
	creds := m.cfg.Credentials
	tok := ks.servable(creds)
	if tok == nil && !ks.loaded {
		m.load(ks)
		w := ks.wait()
		w.waitLoad = append(w.waitLoad, r.id)
		return
	}
	if tok != nil && !m.isDue(ks, tok, now) {
		// Not due at its point in the window (a config write may have moved the point past
		// a renewal that failed): a failing renewal is still said, as status says stale.
		m.serveRead(r, result{token: tok, renewErr: ks.renewalFailure(creds, tok)}, now)
		return
	}
	if tok != nil && m.cfg.Ahead && tok.Life(now) >= max(MinAheadLife, r.minLife) {
		// Served at once while the renewal runs behind the read: the read reports the
		// last renewal's failure, as the renewal behind it has not ended yet.
		m.serveRead(r, result{token: tok, renewErr: ks.renewalFailure(creds, tok)}, now)
		m.renewBehind(ks, now, false)
		return
	}
	if ks.inflight != nil {
		w := ks.wait()
		w.waitReq = append(w.waitReq, r.id)
		return
	}
	res, sent := m.decide(ks, now, false, r)
	if sent {
		w := ks.wait()
		w.waitReq = append(w.waitReq, r.id)
		return
	}
	m.resolveRead(r, res, now)
}

// renewBehind starts the key's renewal behind a read or for the periodic run, unless one is
// running; the outcome feeds the background-renewal metric.
func (m *Machine) renewBehind(ks *keyState, now time.Time, fromTick bool) bool {
	if ks.inflight != nil {
		return false
	}
	res, sent := m.decide(ks, now, true, nil)
	if sent {
		ks.inflight.fromTick = fromTick
		return true
	}
	if !res.noted {
		m.noteRenewal(res)
	}
	return false
}

// noteRenewal counts a background renewal that ended (or never started).
func (m *Machine) noteRenewal(res result) {
	switch {
	case res.fetched:
		m.emit(Metric{Name: MetricRenewal})
	case res.err != nil:
		m.emit(Metric{Name: MetricRenewal, Err: res.err})
	case res.renewErr != nil && !res.backingOff:
		m.emit(Metric{Name: MetricRenewal, Err: res.renewErr})
	}
}

// isDue reports whether the key's token is to be renewed at now: past its point in Naver's
// window, or with less life than a role reading it asks for.
func (m *Machine) isDue(ks *keyState, tok *Token, now time.Time) bool {
	return now.After(m.renewAt(ks, tok)) || tok.Life(now) < ks.minLife
}

func (m *Machine) renewAt(ks *keyState, tok *Token) time.Time {
	return tok.RenewAt(SpreadOffset(ks.spreadHash, m.spread()))
}

// decide is what a read (r) or a background renewal does about a key whose token is not
// simply served: serve what is cached, share the last failure, or send a request (sent:
// the request is in flight, the read waits for it).
func (m *Machine) decide(ks *keyState, now time.Time, background bool, r *pendingRead) (res result, sent bool) {
	creds := m.cfg.Credentials
	current := ks.servable(creds)
	if current != nil && !m.isDue(ks, current, now) {
		return result{token: current}, false
	}
	servable := current != nil && current.Life(now) >= MinServableLife
	failure := ks.failureFor(creds)
	fails := ks.failed()
	backoffUntil := fails.backoffUntil
	if failure == nil {
		// A failure of other credentials owes these no back-off.
		backoffUntil = time.Time{}
	}
	if ks.refused != nil && ks.refused.Until.After(now.Add(RefusedFor)) {
		ks.refused.Until = now.Add(RefusedFor) // the clock stepped back: an hour from now at most
	}
	if ks.refused != nil && now.Before(ks.refused.Until) {
		// Naver refused the account: nothing is asked before the refusal's hour ends (or a
		// drop), also to renew a token that still has life; that one is served meanwhile.
		if servable {
			return result{token: current, renewErr: &Failure{Err: ks.refused, At: ks.refused.At, refusal: true}, backingOff: true}, false
		}
		return result{err: ks.refused}, false
	}
	if servable && (now.Sub(current.FetchedAt) < minRefetchInterval || now.Before(fails.notBefore)) {
		return result{token: current, renewErr: failure}, false
	}
	if servable && failure != nil && now.Before(m.recoverySpreadPoint(ks, current)) {
		// Naver is back, and this token has time to spare: its renewal waits for its point
		// in the recovery's spread.
		return result{token: current, renewErr: failure, backingOff: true}, false
	}
	recovered := failure != nil && now.Before(backoffUntil) && m.naverBackFor(ks, failure, now)
	if now.Before(backoffUntil) && !recovered {
		replay := &Failure{Err: failure.Err, At: failure.At, Replayed: true, RetryAt: backoffUntil, outcome: failure.outcome}
		if servable {
			return result{token: current, renewErr: replay, backingOff: true}, false
		}
		return result{err: replay}, false
	}
	req := m.newRequest(ks, now, background, nil, current)
	req.unpaced = recovered
	if r != nil && r.newAccounts > 0 && ks.issuedAt.IsZero() {
		req.tryRole, req.tryLimit = r.role, r.newAccounts
	}
	if m.startRequest(req, now) {
		return result{}, true
	}
	// Refused before anything was sent (budgets, breaker, counts): the request ended.
	return req.res, false
}

// recoverySpreadPoint is when a key that failed in a storm renews its still-servable token
// once Naver is back for the application: at a point stable for the key within the
// renewal spread in force after the recovery, with MinAheadLife (or the life a role reading
// it asks for) still left. Zero or past: at once.
func (m *Machine) recoverySpreadPoint(ks *keyState, tok *Token) time.Time {
	recoveredAt := m.app(ks.key.ClientID).recoveredAt
	if recoveredAt.IsZero() {
		return time.Time{}
	}
	margin := max(MinAheadLife, ks.minLife)
	width := min(m.spread(), tok.Life(recoveredAt)-margin)
	if width <= 0 || m.spreadWidth <= 0 {
		return time.Time{}
	}
	return recoveredAt.Add(time.Duration(float64(width) * float64(SpreadOffset(ks.spreadHash, m.spreadWidth)) / float64(m.spreadWidth)))
}

// naverBackFor reports whether a key backing off after failure may ask now because Naver
// came back for the application since: only after Naver failed (no answer or a 5xx; not a
// 429 or Retry-After, which ask for time), at least FailureBackoff after it, once per
// recovery, and never into the last burst of the key's hourly budget.
func (m *Machine) naverBackFor(ks *keyState, failure *Failure, now time.Time) bool {
	o := failure.outcome
	if failure.refusal || o.RetryAfter > 0 || o.Status == 429 || !o.failing() {
		return false
	}
	if now.Sub(failure.At) < FailureBackoff || !m.app(ks.key.ClientID).recoveredAt.After(failure.At) {
		return false
	}
	n, _ := ks.log.since(now, time.Hour)
	perHour := m.cfg.PerHour
	burst, _ := Pacing(perHour)
	return perHour <= 0 || n < perHour-burst
}

// resolveRead answers r with res's token (judged against r's least life) or error.
func (m *Machine) resolveRead(r *pendingRead, res result, now time.Time) {
	if res.err != nil {
		m.failRead(r, res.err)
		return
	}
	m.serveRead(r, res, now)
}

func (m *Machine) serveRead(r *pendingRead, res result, now time.Time) {
	// The request may have taken a while, or been joined late: judge the token now.
	if left := res.token.Life(now); left < r.minLife {
		switch {
		case res.renewErr != nil && left < MinServableLife:
			m.failRead(r, res.renewErr)
		case res.renewErr != nil:
			m.failRead(r, &LifeError{Left: left, MinLife: r.minLife, Renewal: res.renewErr})
		default:
			m.failRead(r, &LifeError{Left: left, MinLife: r.minLife})
		}
		return
	}
	delete(m.reads, r.id)
	m.emit(Serve{Read: r.id, Token: res.token, Warning: res.renewErr, Fetched: res.fetched})
}

func (m *Machine) failRead(r *pendingRead, err error) {
	delete(m.reads, r.id)
	m.emit(Fail{Read: r.id, Err: err})
}

// LifeError: the token has too little life left for the read.
type LifeError struct {
	Left    time.Duration
	MinLife time.Duration
	Renewal *Failure
}

func (e *LifeError) Error() string {
	left := max(e.Left, 0).Round(time.Second)
	if e.Renewal != nil {
		return fmt.Sprintf("the token has only %s left, less than the role's min_remaining_ttl, and renewing it failed: %v", left, e.Renewal)
	}
	return fmt.Sprintf("the token has only %s left", left)
}

func (e *LifeError) Unwrap() error {
	if e.Renewal == nil {
		return nil
	}
	return e.Renewal
}
