package core

import "time"

// A key's token requests as made (newRequest), verifications of new credentials, and
// tokens learnt from elsewhere (a verification's, handed back by Naver).

// newRequest makes a token request of the key (not started).
func (m *Machine) newRequest(ks *keyState, now time.Time, background bool, v *pendingVerify, current *Token) *request {
	req := &request{id: ReqID(m.id()), ks: ks, background: background, verify: v, current: current}
	if v != nil {
		req.cfg = v.cfg
	} else {
		req.cfg = *m.cfg
	}
	fails := ks.failed()
	req.single = fails.failures > 0 && fails.failedWith == req.cfg.Credentials
	return req
}

// request is a token request the machine started (or is starting).
type request struct {
	id         ReqID
	ks         *keyState
	cfg        Config
	background bool
	fromTick   bool
	verify     *pendingVerify
	// current is the token servable when the request was decided.
	current *Token
	single  bool // no retries: the key (or the application) is failing
	unpaced bool // Naver came back since the key failed: its first attempt skips the pace
	probe   bool // the breaker's probe
	// waitingCounts: the request waits for the application's counts to load.
	waitingCounts bool
	sent          bool
	attempts      int
	sentAt        time.Time
	countedAt     time.Time // when the key's log counts its last attempt (see attemptSending)
	appShare      int
	// tryRole: a many-seller role's read of an account without a token from Naver;
	// waitingTries: it waits for one of the role's tries under way to end.
	tryRole      string
	tryLimit     int
	waitingTries bool
	// waitingSweep: the automatic budget refused it while the stored tokens were not all
	// known; it waits for the sweep that learns them (sweepTried: once).
	waitingSweep bool
	sweepTried   bool
	// quiet: the application's budget refused it, as it refused the background renewal
	// before it, and that was said: its refusal is not logged again.
	quiet bool
	// res is what the request gave, once it ended.
	res result
}

// pendingVerify is a config write's verification.
type pendingVerify struct {
	id  VerifyID
	cfg Config
	ks  *keyState
}

func (m *Machine) verify(e Verify) {
	ks := m.key(Key{ClientID: e.Config.ClientID, Type: TypeSelf})
	v := &pendingVerify{id: e.ID, cfg: e.Config, ks: ks}
	m.verifies[e.ID] = v
	m.runVerify(v, e.Now, false)
}

// runVerify asks Naver for a SELF token with the new credentials, unless the one cached
// under them is a token Naver would hand back (a needless request; the credentials were
// proven when it was issued). loadFailed: what storage knows could not be read.
func (m *Machine) runVerify(v *pendingVerify, now time.Time, loadFailed bool) {
	ks := v.ks
	if !ks.loaded && !loadFailed {
		m.load(ks)
		w := ks.wait()
		w.verifyWait = append(w.verifyWait, v.id)
		return
	}
	for _, t := range []*Token{ks.token, ks.fact} {
		if t.Servable(v.cfg.Credentials) && t.NaverLife(now) >= RefreshWindow {
			delete(m.verifies, v.id)
			m.emit(VerifyDone{Verify: v.id, Fresh: true})
			return
		}
	}
	if ks.inflight != nil {
		w := ks.wait()
		w.verifyWait = append(w.verifyWait, v.id)
		return
	}
	// A config write of credentials whose verification Naver just failed shares that
	// failure during the back-off, as reads share a key's: asking again at once is what the
	// back-off exists to prevent.
	if f := m.verifyFailed[v.cfg.verifyKey()]; f != nil && now.Before(f.RetryAt) && !now.Before(f.At) {
		delete(m.verifies, v.id)
		m.emit(VerifyDone{Verify: v.id, Err: &Failure{Err: f.Err, At: f.At, Replayed: true, RetryAt: f.RetryAt, outcome: f.outcome}})
		return
	}
	req := m.newRequest(ks, now, false, v, nil)
	req.single = false
	if !m.startRequest(req, now) {
		delete(m.verifies, v.id)
		m.emit(VerifyDone{Verify: v.id, Err: req.res.err})
	}
}

func (m *Machine) seed(e Seed) {
	ks := m.key(e.Token.Key)
	if !ks.loaded && ks.fact == nil {
		m.load(ks)
		w := ks.wait()
		w.seedsWait = append(w.seedsWait, e.Token)
		return
	}
	tok := e.Token
	m.boundHandedBack(ks, &tok, e.Now)
	m.publish(ks, &tok, e.Now)
}

// boundHandedBack: if Naver handed back a token already known (cached, dropped, or of other
// credentials), it thinks 30 minutes or more are left. Its answer never extends what is
// known of the token's life, and the key does not ask again for a while.
func (m *Machine) boundHandedBack(ks *keyState, tok *Token, now time.Time) {
	known := ks.fact
	if known == nil || known.Fingerprint != tok.Fingerprint {
		return
	}
	if known.ExpiresAt.Before(tok.ExpiresAt) {
		tok.ExpiresAt = known.ExpiresAt
	}
	if !known.LatestExpiry.IsZero() && known.LatestExpiry.Before(tok.LatestExpiry) {
		tok.LatestExpiry = known.LatestExpiry
	}
	m.warn("naver handed back a token already known; not asking again for a while", m.keyArgs(ks, "retry_after", sameTokenPause)...)
	fails := ks.failed()
	fails.notBefore = now.Add(sameTokenPause)
	ks.setFailed(fails)
}
