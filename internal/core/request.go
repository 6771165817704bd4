package core

import (
	"errors"
	"fmt"
	"time"
)

// startRequest starts req once the application's counts are known: its admission by the
// budgets and the breaker, and its first attempt. It returns false when req ended at once
// (req.res says why); otherwise the request is in flight (or waits for the counts) and
// what waits on the key waits on it.
func (m *Machine) startRequest(req *request, now time.Time) bool {
	ks := req.ks
	ks.inflight = req
	m.reqs[req.id] = req
	app := m.app(ks.key.ClientID)
	if !app.loaded {
		req.waitingCounts = true
		app.waitLoad = append(app.waitLoad, req.id)
		if !app.loading {
			app.loading = true
			m.emit(LoadCounts{ClientID: app.clientID})
		}
		return true
	}
	return m.admit(req, now)
}

// admit lets req's first attempt go, or ends req with why not.
func (m *Machine) admit(req *request, now time.Time) bool {
	ks := req.ks
	app := m.app(ks.key.ClientID)
	if app.failures > 0 && req.cfg.Endpoint == app.endpoint {
		// Naver fails at this address: one paced attempt. A verification of another address
		// (an operator fixing base_url) owes nothing to this one's failures.
		req.single = true
	}
	share := app.budget(&req.cfg, now, m.inUse(ks.key.ClientID, now))
	if req.background {
		// Background renewals leave at least one request of the hour to reads.
		share = min(int(float64(share)*BackgroundShare), share-1)
		if share < 1 {
			share = -1 // none
		}
	}
	req.appShare = share
	err := m.check(req, now, true)
	var ab *AppBudgetError
	if errors.As(err, &ab) && !req.background && req.cfg.AppPerHour == 0 && !m.storedKnown && !req.sweepTried {
		// The automatic budget grows with the keys Naver issued a token to, and right after a
		// start the stored ones are known only as they are read: learn them all before
		// refusing a read below the documented size (a crash loop would otherwise lock sellers
		// out). A background renewal does not wait: a read may join it, and must find room.
		req.waitingSweep, req.sweepTried = true, true
		m.sweepWait = append(m.sweepWait, req.id)
		if m.sweeping {
			m.sweepPart()
		} else {
			m.lastSweep = time.Time{}
			m.sweepIfDue(now)
		}
		return true
	}
	if err == nil && req.tryRole != "" {
		if full, next := m.triesOf(req.tryRole).full(now, req.tryLimit); full {
			if next.IsZero() {
				// Full of accounts being asked for now: this one waits for one of them to
				// end (one that gets a token frees its place).
				req.waitingTries = true
				m.triesWait[req.tryRole] = append(m.triesWait[req.tryRole], req.id)
				return true
			}
			err = &NewAccountsError{Role: req.tryRole, Limit: req.tryLimit, NextAfter: next}
		}
	}
	var probe bool
	if err == nil && req.verify == nil {
		// A verification is of credentials not yet stored: it neither waits on the breaker
		// of the live config nor feeds it.
		if probe, err = app.admitBreaker(now, req.cfg.Timeout); err != nil {
			m.emit(Metric{Name: MetricBreakerRefused})
		}
	} else if err != nil {
		var ab *AppBudgetError
		if errors.As(err, &ab) {
			m.emit(Metric{Name: MetricAppBudgetRefused})
		} else {
			m.emit(Metric{Name: MetricBudgetRefused})
		}
		switch {
		case ab == nil || !req.background:
			m.warn("token request refused by the hourly budget", m.keyArgs(ks, "error", err)...)
		case app.budgetSaid:
			// While the budget is spent, every due key's renewal is refused each minute:
			// said once (metrics and status still count each), until one is sent again.
			req.quiet = true
		default:
			app.budgetSaid = true
			m.warn("token request refused by the hourly budget", m.keyArgs(ks, "error", err,
				"note", "background renewals of other keys refused by the application's budget are not logged until one is sent")...)
		}
	}
	if err != nil {
		m.complete(req, now, nil, err, Outcome{}, true)
		return false
	}
	req.sent, req.sentAt, req.probe, req.attempts = true, now, probe, 1
	if req.background {
		app.budgetSaid = false
	}
	if req.tryRole != "" {
		m.triesOf(req.tryRole).start(req.id)
	}
	cleared := m.countAttempt(req, now)
	var verify VerifyID
	if req.verify != nil {
		verify = req.verify.id
	}
	m.emit(Send{Req: req.id, Key: ks.key, Credentials: req.cfg.Credentials, Verify: verify, Background: req.background, Retries: req.cfg.MaxRetries, Cleared: cleared})
	return true
}

func (m *Machine) triesOf(role string) *tries {
	t, ok := m.tries[role]
	if !ok {
		t = &tries{}
		m.tries[role] = t
	}
	return t
}

// check reports why req may not send an attempt now (first: its first), or nil.
func (m *Machine) check(req *request, now time.Time, first bool) error {
	ks := req.ks
	perHour := req.cfg.PerHour
	n, oldest := ks.log.since(now, time.Hour)
	if perHour > 0 && n >= perHour {
		return &BudgetError{Limit: perHour, NextAfter: oldest.Add(time.Hour)}
	}
	if req.appShare != 0 {
		app := m.app(ks.key.ClientID)
		an, aold := app.lastHour(now)
		if limit := max(req.appShare, 0); an >= limit {
			return &AppBudgetError{Limit: limit, Background: req.background, NextAfter: aold.Add(AppWindow)}
		}
	}
	if req.single && !first {
		return errNoRetry
	}
	// A request while Naver fails keeps to the pace: a storm must not spend the hour's
	// budget in its first minutes. The retries of a request that began with Naver healthy
	// do not wait for it (max_retries bounds them).
	if req.single && !(req.unpaced && first) {
		if next := ks.log.nextPaced(now, perHour); now.Before(next) {
			return &BudgetError{Limit: perHour, NextAfter: next, Paced: true}
		}
	}
	return nil
}

// countAttempt counts an attempt of req about to be sent, in the key's log and the
// application's counts; cleared says the counts in storage include it already, otherwise
// its verdict comes once a write includes it.
func (m *Machine) countAttempt(req *request, now time.Time) (cleared bool) {
	ks := req.ks
	ks.log.record(now, req.cfg.PerHour, req.single)
	req.countedAt = now
	app := m.app(ks.key.ClientID)
	seq, stored := app.count(now, m.inUse(ks.key.ClientID, now))
	if stored {
		return true
	}
	app.pending = append(app.pending, pendingAttempt{req: req.id, seq: seq, minute: minuteOf(now)})
	m.writeCounts(app, now)
	return false
}

func (m *Machine) attemptAsk(e AttemptAsk) {
	req, ok := m.reqs[e.Req]
	if !ok || !req.sent {
		m.emit(AttemptVerdict{Req: e.Req, Err: ErrClosing})
		return
	}
	if err := m.check(req, e.Now, false); err != nil {
		m.emit(AttemptVerdict{Req: e.Req, Err: err})
		return
	}
	if e.Check {
		m.emit(AttemptVerdict{Req: e.Req, Go: true})
		return
	}
	req.attempts++
	if m.countAttempt(req, e.Now) {
		m.emit(AttemptVerdict{Req: e.Req, Go: true})
	}
}

// attemptSending counts req's last attempt from when it leaves, if that is later than when
// it was decided: a check made at the decision counted every attempt of the hour before it,
// and none of the key's attempts can fall between the decision and the send (one at a
// time), so no hour of sends holds more than the budget.
func (m *Machine) attemptSending(e AttemptSending) {
	req, ok := m.reqs[e.Req]
	if !ok || !req.sent {
		return
	}
	if req.ks.log.restamp(req.countedAt, e.Now) {
		req.countedAt = e.Now
	}
}

// writeCounts writes the application's counts if attempts wait for it and no write is in
// flight (the next one follows it, including every attempt counted meanwhile).
func (m *Machine) writeCounts(app *appState, now time.Time) {
	if app.writing != 0 || len(app.pending) == 0 {
		return
	}
	limit := AppBudgetFloor
	if m.cfg != nil && m.cfg.ClientID == app.clientID {
		limit = app.budget(m.cfg, now, m.inUse(app.clientID, now))
	}
	counts, minute, reserve := app.snapshot(now, limit)
	id := WriteID(m.id())
	app.writing, app.writeUpTo, app.writeAt, app.writeRsv = id, app.countSeq, minute, reserve
	m.counts[id] = app
	m.emit(StoreCounts{Write: id, ClientID: app.clientID, Counts: counts})
}

func (m *Machine) countsWritten(e CountsWritten) {
	app, ok := m.counts[e.Write]
	if !ok {
		return
	}
	delete(m.counts, e.Write)
	app.writing = 0
	var rest []pendingAttempt
	if e.Err != nil {
		err := &CountsError{Err: fmt.Errorf("writing them: %w", e.Err)}
		m.warn("storing the application's request counts failed; the request was not sent", "error", e.Err)
		for _, p := range app.pending {
			if p.seq <= app.writeUpTo {
				m.emit(AttemptVerdict{Req: p.req, Err: err})
			} else {
				rest = append(rest, p)
			}
		}
	} else {
		app.storedSeq = app.writeUpTo
		app.slots[app.writeAt] += app.writeRsv
		app.pruned = false
		for _, p := range app.pending {
			switch {
			case p.seq <= app.writeUpTo:
				m.emit(AttemptVerdict{Req: p.req, Go: true})
			case p.minute == app.writeAt && app.slots[p.minute] > 0:
				// Counted after the write's snapshot, in the minute it reserved ahead for.
				app.slots[p.minute]--
				app.pruned = false
				m.emit(AttemptVerdict{Req: p.req, Go: true})
			default:
				rest = append(rest, p)
			}
		}
	}
	app.pending = rest
	m.writeCounts(app, e.Now)
}

func (m *Machine) countsLoaded(e CountsLoaded) {
	app, ok := m.apps[e.ClientID]
	if !ok || app.loaded {
		return // read twice (status read them while a request did): merged once
	}
	app.loading = false
	waiting := app.waitLoad
	app.waitLoad = nil
	if e.Err != nil && !app.loadRetried {
		// Read again at once, before any request is refused for it: a storage hiccup at the
		// first request after a start must not fail reads.
		m.warn("reading the application's request counts failed; reading them again", "error", e.Err)
		app.loadRetried, app.loading, app.waitLoad = true, true, waiting
		m.emit(LoadCounts{ClientID: app.clientID})
		return
	}
	app.loadRetried = false
	if e.Err != nil {
		m.warn("reading the application's request counts failed", "error", e.Err)
		err := &CountsError{Err: fmt.Errorf("reading them: %w", e.Err)}
		for _, id := range waiting {
			if req, ok := m.reqs[id]; ok {
				req.waitingCounts = false
				m.complete(req, e.Now, nil, err, Outcome{}, true)
			}
		}
		return
	}
	if e.Lost {
		// Lost: the counts in memory replace them at the next write, rather than no count
		// ever being stored again.
		m.warn("the stored request counts of the application do not decode; counting from those in memory")
	} else {
		app.load(e.Counts)
	}
	app.loaded = true
	for _, id := range waiting {
		if req, ok := m.reqs[id]; ok {
			req.waitingCounts = false
			m.admit(req, e.Now)
		}
	}
}

func (m *Machine) answer(e Answer) {
	req, ok := m.reqs[e.Req]
	if !ok {
		return
	}
	m.complete(req, e.Now, e.Token, e.Err, e.Outcome, e.NotSent || !req.sent)
}

// naverRefused reports whether Naver answered and refused the account: a try of an
// account that counts for the hour. Naver failing (no answer, a 429, a 5xx) does not.
func naverRefused(o Outcome) bool {
	// 429 is Naver's rate limit and 401 a refusal of the application's own credentials (a
	// secret re-issued or mistyped): neither says anything of the account.
	return o.AccountRefused || (o.Status >= 400 && o.Status < 500 && o.Status != 429 && o.Status != 401)
}

// triesFreed admits the requests of role that waited for a try to end.
func (m *Machine) triesFreed(role string, now time.Time) {
	waiting := m.triesWait[role]
	m.triesWait[role] = nil
	for _, id := range waiting {
		if req, ok := m.reqs[id]; ok {
			req.waitingTries = false
			m.admit(req, now)
		}
	}
}

// sweepEnded admits again the requests the automatic budget refused while the stored tokens
// were not all known: now they are, or the sweep failed and the refusal stands.
func (m *Machine) sweepEnded(now time.Time) {
	waiting := m.sweepWait
	m.sweepWait = nil
	for _, id := range waiting {
		if req, ok := m.reqs[id]; ok {
			req.waitingSweep = false
			m.admit(req, now)
		}
	}
}

// UnservableError is an answer of Naver's whose token cannot be served: it is a failure.
type UnservableError struct{ Left time.Duration }

func (e *UnservableError) Error() string {
	return fmt.Sprintf("the token it issued has only %s left, too little to serve", max(e.Left, 0).Round(time.Second))
}

// complete ends req: with what Naver issued, or err (notSent: nothing reached Naver). It
// publishes what was learnt, records the key's success or failure, and answers what waited.
func (m *Machine) complete(req *request, now time.Time, issued *Issued, err error, o Outcome, notSent bool) {
	ks := req.ks
	delete(m.reqs, req.id)
	if ks.inflight == req {
		ks.inflight = nil
	}
	app := m.app(ks.key.ClientID)
	app.dropPending(req.id)
	if req.waitingCounts {
		app.waitLoad = removeID(app.waitLoad, req.id)
	}
	if req.waitingTries {
		m.triesWait[req.tryRole] = removeID(m.triesWait[req.tryRole], req.id)
	}
	if req.waitingSweep {
		m.sweepWait = removeID(m.sweepWait, req.id)
	}
	switch {
	case req.verify != nil:
	case notSent:
		app.endProbe(req.probe)
	case req.cfg.Endpoint != app.endpoint:
		// A late answer of an address the config no longer has tells nothing of this one.
		app.endProbe(req.probe)
	default:
		app.result(now, req.probe, err, o)
	}
	var tok *Token
	if err == nil && issued != nil {
		tok = &Token{AccessToken: issued.AccessToken, TokenType: issued.TokenType, ExpiresAt: issued.ExpiresAt, LatestExpiry: issued.LatestExpiry,
			Key: ks.key, Credentials: req.cfg.Credentials, FetchedAt: req.sentAt, Fingerprint: Fingerprint(issued.AccessToken)}
		m.boundHandedBack(ks, tok, now)
		if left := tok.Life(now); left < MinServableLife {
			err, o = &UnservableError{Left: left}, Outcome{Status: 200}
			tok = tok.retired(RetiredUnusable)
		}
	}
	if err == nil && tok == nil {
		err = errors.New("no token in Naver's answer")
	}
	if !notSent {
		m.emit(Metric{Name: MetricRequested, Err: err})
	}
	if req.tryRole != "" && m.triesOf(req.tryRole).end(now, req.id, err != nil && naverRefused(o)) {
		m.triesFreed(req.tryRole, now)
	}
	if v := req.verify; v != nil {
		delete(m.verifies, v.id)
		delete(m.verifyFailed, req.cfg.verifyKey())
		if err != nil {
			if !notSent {
				m.verifyFailed[req.cfg.verifyKey()] = &Failure{Err: err, At: now, RetryAt: now.Add(readBackoff(o, 1)), outcome: o}
			}
			m.emit(VerifyDone{Verify: v.id, Err: err})
		} else {
			// Known and stored at once, under its credentials: a config write that fails after
			// its verification, or a write of them later, must not cost a request Naver
			// answers with this token. Naver just issued it: whatever superseded these
			// credentials (a mistyped secret written in between) did not end them at Naver,
			// so the token is not stored as a retired fact, which the write could not undo.
			delete(m.superseded, req.cfg.Credentials)
			m.publish(ks, tok, now)
			m.emit(VerifyDone{Verify: v.id, Token: tok})
		}
		m.afterRequest(req, now)
		return
	}
	current := req.current
	// An unservable answer is remembered, but never over a token still servable.
	if tok != nil && (tok.Retired == "" || current == nil) {
		m.publish(ks, tok, now)
	} else if tok != nil {
		// Naver issued it all the same: the key counts in the automatic budget from now.
		m.setIssued(ks, IssuedAt(tok))
	}
	var res result
	if err != nil {
		failure := m.recordFailure(ks, req.cfg.Credentials, err, o, notSent, now)
		switch {
		case o.AccountRefused && ks.key.Type == TypeSeller:
			ks.refused = &AccountRefusedError{Account: ks.key.AccountID, At: now, Until: now.Add(RefusedFor), Reason: err, Answer: o.Answer}
			m.persist(ks)
		case ks.refused != nil && !notSent:
			// Naver answered otherwise (it fails, say): what is wrong now is that.
			ks.refused = nil
			m.persist(ks)
		}
		// The request may have taken until the token's last seconds: judge it again. A
		// token dropped meanwhile is not served.
		if current != nil && current.Life(now) >= MinServableLife && ks.token == current {
			if !req.quiet {
				m.warn("renewing token failed; serving the cached one until it expires", m.keyArgs(ks, "expires_at", current.ExpiresAt, "error", err)...)
			}
			res = result{token: current, renewErr: failure}
		} else {
			if req.background && !req.quiet {
				m.warn("renewing token failed", m.keyArgs(ks, "error", err)...)
			}
			res = result{err: err}
		}
	} else {
		m.recordSuccess(ks)
		if ks.refused != nil {
			ks.refused = nil
			m.persist(ks)
		}
		res = result{token: tok, fetched: true}
	}
	if req.background {
		m.noteRenewal(res)
		res.noted = true
	}
	req.res = res
	m.afterRequest(req, now)
}

// afterRequest answers the reads that waited on req and lets what waited for the key's
// request go on.
func (m *Machine) afterRequest(req *request, now time.Time) {
	ks := req.ks
	for _, id := range take(&ks.wait().waitReq) {
		r, ok := m.reads[id]
		if !ok {
			continue
		}
		if req.verify == nil && m.cfg != nil && req.cfg.Credentials == m.cfg.Credentials {
			m.resolveRead(r, req.res, now)
		} else {
			// Not a request for this read's credentials: it decides afresh.
			m.evalRead(r, now)
		}
	}
	for _, id := range take(&ks.wait().verifyWait) {
		if v, ok := m.verifies[id]; ok {
			m.runVerify(v, now, false)
		}
	}
	ks.tidyWaits()
	if req.fromTick {
		m.renew.inflight--
		m.renewNext(now)
	}
}

// recordFailure notes a failed request (or one a budget refused) of the key, sets its
// back-off, and returns the failure reads report.
func (m *Machine) recordFailure(ks *keyState, creds string, err error, o Outcome, notSent bool, now time.Time) *Failure {
	ks.lastError = &KeyError{At: now, Err: err}
	failure := &Failure{Err: err, At: now, outcome: o, refusal: notSent && refusal(err)}
	if m.cfg == nil || m.cfg.Credentials != creds {
		// Made with credentials that are gone: the new ones owe it no back-off.
		return failure
	}
	f := ks.failed()
	if f.failedWith != creds {
		f.failures, f.failedWith = 0, creds
	}
	f.lastFailure = failure
	if failure.refusal {
		// A refusal sent nothing; the budget or the breaker is itself the back-off.
		ks.setFailed(f)
		return failure
	}
	f.failures++
	// Reads share the failure until the pace lets the key ask again, so that they are
	// answered with Naver's failure, not a refusal of the budget.
	f.backoffUntil = latest(now.Add(readBackoff(o, f.failures)), ks.log.nextPaced(now, m.cfg.PerHour))
	f.nextBackground = latest(now.Add(Doubling(backgroundBackoff, f.failures, maxBackgroundBackoff)), f.backoffUntil)
	ks.setFailed(f)
	return failure
}

// recordSuccess ends the key's failures. Only the pause after a handed-back token stays:
// the credentials of the failures matter no more once none is left.
func (m *Machine) recordSuccess(ks *keyState) {
	ks.setFailed(keyFailures{notBefore: ks.failed().notBefore})
}

// dropPending forgets the attempts of req waiting for a write of the counts.
func (a *appState) dropPending(req ReqID) {
	kept := a.pending[:0]
	for _, p := range a.pending {
		if p.req != req {
			kept = append(kept, p)
		}
	}
	a.pending = kept
}
