package core

import "time"

// pendingDrop is an operator's drop of a key's token, under way.
type pendingDrop struct {
	id    DropID
	ks    *keyState
	force bool
	// tok is the token the drop is of (the one Naver was asked about); probed: Naver's
	// verdict (or force) is in, only storing the fact is left.
	tok    *Token
	probed bool
}

// drop stops serving the key's token, keeping its fact in memory and storage, so that the
// next read asks Naver while whatever Naver answers stays bounded by what is known of it.
// Unless forced, Naver is asked first whether it still accepts the token: a token Naver
// accepts is kept (asking for a new one while it has 30 minutes or more left is exactly what
// Naver penalises). A drop of a key Naver refused forgets the refusal.
func (m *Machine) drop(e Drop) {
	if m.cfg == nil {
		m.emit(DropDone{Drop: e.ID, Err: ErrNotConfigured})
		return
	}
	d := &pendingDrop{id: e.ID, ks: m.key(e.Key), force: e.Force}
	d.ks.wait().dropping++
	m.drops[d.id] = d
	m.runDrop(d, e.Now)
}

func (m *Machine) runDrop(d *pendingDrop, now time.Time) {
	ks := d.ks
	if m.cfg == nil {
		m.dropDone(d, DropDone{Err: ErrNotConfigured})
		return
	}
	creds := m.cfg.Credentials
	if d.probed {
		m.applyDrop(d, now)
		return
	}
	tok := ks.servable(creds)
	if tok == nil && !ks.loaded {
		m.load(ks)
		w := ks.wait()
		w.dropsWait = append(w.dropsWait, d.id)
		return
	}
	if tok == nil {
		tok = m.servedUnderOthers(ks, creds, now)
	}
	if tok == nil {
		if ks.refused != nil {
			// The operator says the account is worth asking for again (the seller authorised
			// the application again): the refusal and the failure it left go, and the next
			// read asks Naver at once.
			ks.refused, ks.lastError = nil, nil
			// Only the pause after a handed-back token stays: the credentials of the
			// failures matter no more once none is left.
			ks.setFailed(keyFailures{notBefore: ks.failed().notBefore})
			m.persist(ks)
			m.dropDone(d, DropDone{Outcome: RefusalCleared})
			return
		}
		var until time.Time
		if b := ks.failed().backoffUntil; ks.failureFor(creds) != nil && now.Before(b) {
			until = b
		}
		m.dropDone(d, DropDone{Outcome: NoToken, BackoffUntil: until})
		return
	}
	d.tok = tok
	if !d.force {
		m.emit(Probe{Drop: d.id, Key: ks.key, Token: tok.AccessToken, Credentials: creds})
		return
	}
	d.probed = true
	m.applyDrop(d, now)
}

// servedUnderOthers is the key's token of other credentials that a config with them would
// serve again (base_url changed, the secret did not: a new address ends nothing at Naver, and
// the old address's tokens are served again once it is set back), nil if there is none. A
// drop is of it too: answering that no token is cached would let the token the operator
// says is dead be served once base_url is set back. It is checked with Naver as a served
// token is, through the config in force.
func (m *Machine) servedUnderOthers(ks *keyState, creds string, now time.Time) *Token {
	f := ks.fact
	if f == nil || f.Retired != "" || f.AccessToken == "" || f.Credentials == creds || m.superseded[f.Credentials] || f.Life(now) <= 0 {
		return nil
	}
	return f
}

func (m *Machine) probeResult(e ProbeResult) {
	d, ok := m.drops[e.Drop]
	if !ok {
		return
	}
	switch {
	case e.Err != nil:
		m.dropDone(d, DropDone{Err: e.Err})
	case e.Alive:
		m.dropDone(d, DropDone{Outcome: StillAlive})
	default:
		d.probed = true
		m.applyDrop(d, e.Now)
	}
}

// applyDrop stores the dropped token's fact and then drops it from memory: if storing
// fails, nothing was dropped, in memory or storage.
func (m *Machine) applyDrop(d *pendingDrop, now time.Time) {
	ks := d.ks
	cur := ks.token
	if cur == nil && !ks.loaded {
		// Evicted while Naver was asked: the token may be in storage only.
		m.load(ks)
		w := ks.wait()
		w.dropsWait = append(w.dropsWait, d.id)
		return
	}
	if cur == nil && ks.fact.Servable(d.tok.Credentials) && ks.fact.Life(now) > 0 {
		cur = ks.fact
	}
	if cur != nil && cur.Fingerprint != d.tok.Fingerprint {
		m.dropDone(d, DropDone{Outcome: Renewed})
		return
	}
	if ks.fact != nil && ks.fact.Fingerprint == d.tok.Fingerprint && ks.fact.Retired == RetiredDropped {
		m.dropDone(d, DropDone{Outcome: Dropped}) // another drop of it landed meanwhile
		return
	}
	w := ks.wait()
	w.dropQueue = append(w.dropQueue, d)
	m.flush(ks)
}

// dropApplied: the drop's fact is stored; memory forgets the token.
func (m *Machine) dropApplied(d *pendingDrop, ks *keyState, now time.Time) {
	fact := d.tok.retired(RetiredDropped)
	if ks.learn(fact, false) {
		ks.token = nil
	}
	if ks.fact != fact && ks.fact.Fingerprint != fact.Fingerprint {
		// A newer token was published while the fact was stored: it stays, and storage
		// gets it again (flush follows).
		ks.dirty = true
		m.dropDone(d, DropDone{Outcome: Renewed})
		return
	}
	// The back-off of a failure stays (Naver may have asked for it with Retry-After); only
	// the pause after a handed-back token ends, as that token is now known to be dead.
	if fails := ks.failed(); !fails.notBefore.IsZero() {
		fails.notBefore = time.Time{}
		ks.setFailed(fails)
	}
	if ks.refused != nil {
		ks.refused = nil
		ks.dirty = true
	}
	m.dropDone(d, DropDone{Outcome: Dropped})
}

func (m *Machine) dropFailed(d *pendingDrop, ks *keyState, err error) {
	m.dropDone(d, DropDone{Err: &StorageError{What: "storing the dropped token's fact", Err: err}})
}

func (m *Machine) dropDone(d *pendingDrop, done DropDone) {
	delete(m.drops, d.id)
	d.ks.wait().dropping--
	d.ks.tidyWaits()
	done.Drop = d.id
	m.emit(done)
}
