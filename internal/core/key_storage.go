package core

import "time"

// What a key learns from storage and writes to it, one write at a time, and when it
// leaves memory.

// load reads the key's entry from storage, once at a time.
func (m *Machine) load(ks *keyState) {
	if ks.loading {
		return
	}
	ks.loading = true
	m.emit(Load{Key: ks.key})
}

func (m *Machine) loaded(e Loaded) {
	ks := m.state(e.Key)
	if ks == nil {
		return
	}
	ks.loading = false
	if e.Err == nil {
		ks.stored = nil
	}
	if e.Err != nil {
		// Asking Naver without what storage knows of the token could be a needless
		// request, or serve a handed-back token past its death.
		err := &StorageError{What: "reading the cached token from storage", Err: e.Err}
		for _, id := range take(&ks.wait().waitLoad) {
			if r, ok := m.reads[id]; ok {
				m.failRead(r, err)
			}
		}
		for _, id := range take(&ks.wait().dropsWait) {
			if d, ok := m.drops[id]; ok {
				m.dropDone(d, DropDone{Err: &StorageError{What: "reading the cached token", Err: e.Err}})
			}
		}
		for _, id := range take(&ks.wait().verifyWait) {
			if v, ok := m.verifies[id]; ok {
				m.warn("reading what is known of the token failed", m.keyArgs(ks, "error", e.Err)...)
				m.runVerify(v, e.Now, true)
			}
		}
		ks.tidyWaits()
		return
	}
	ks.loaded = true
	if stored := e.Entry; stored != nil && stored.Key == e.Key {
		m.learnStored(ks, stored, e.Now)
	}
	if ks.markWhenLoaded {
		ks.markWhenLoaded = false
		if ks.fact != nil && !m.namedOrSelf(ks.key) {
			if !ks.unnamedMark {
				ks.unnamedMark = true
				m.persist(ks)
			}
			m.evict(ks) // read to be marked, not to be cached
		}
	}
	// Memory may know newer than storage (a token whose write failed, or is under way, when
	// the config was deleted): what it knows serves.
	if ks.token == nil && m.cfg != nil && ks.fact.Servable(m.cfg.Credentials) && ks.fact.Life(e.Now) > 0 && !ks.evictStored {
		ks.token = ks.fact
	}
	m.wake(ks, e.Now)
	if ks.token != nil && !m.namedOrSelf(ks.key) {
		// Its role was deleted while the load was out: the reads it waited for are served,
		// and the key stops being cached, as when a request races the delete.
		m.evict(ks)
	}
}

// learnStored makes a stored entry what memory knows of the key, unless memory knows newer.
func (m *Machine) learnStored(ks *keyState, stored *Token, now time.Time) {
	if stored.RefusedUntil.After(now) && ks.refused == nil {
		ks.refused = &AccountRefusedError{Account: ks.key.AccountID, At: stored.RefusedUntil.Add(-RefusedFor), Until: stored.RefusedUntil, Reason: refusedReason(stored.RefusedReason), Answer: stored.RefusedReason}
	}
	if stored.Fingerprint == "" && stored.AccessToken == "" {
		return // a refusal only
	}
	m.setIssued(ks, IssuedAt(stored))
	if stored.Unnamed {
		ks.unnamedMark = true
	}
	if !ks.learn(stored, true) {
		return
	}
	if m.cfg != nil && stored.Servable(m.cfg.Credentials) && stored.Life(now) > 0 {
		ks.token = stored
	}
}

// wake re-evaluates what waited for the key's load.
func (m *Machine) wake(ks *keyState, now time.Time) {
	for _, id := range take(&ks.wait().waitLoad) {
		if r, ok := m.reads[id]; ok {
			m.evalRead(r, now)
		}
	}
	for _, id := range take(&ks.wait().dropsWait) {
		if d, ok := m.drops[id]; ok {
			m.runDrop(d, now)
		}
	}
	for _, id := range take(&ks.wait().verifyWait) {
		if v, ok := m.verifies[id]; ok {
			m.runVerify(v, now, false)
		}
	}
	for _, t := range take(&ks.wait().seedsWait) {
		m.seed(Seed{Now: now, Token: t})
	}
	ks.tidyWaits()
}

// publish makes tok (of credentials creds) what is known of the key, in memory and storage.
// A token of credentials no longer in force is stored, not served: as it is when the config
// was deleted or changed elsewhere (a config with those credentials serves it again), as
// its fact when a write on this node replaced them.
func (m *Machine) publish(ks *keyState, tok *Token, now time.Time) {
	current := m.cfg != nil && m.cfg.Credentials == tok.Credentials
	if !current && m.superseded[tok.Credentials] && tok.Retired == "" {
		tok = tok.retired(RetiredCredentials)
	}
	if !ks.learn(tok, false) {
		return
	}
	m.setIssued(ks, IssuedAt(tok))
	if tok.Retired == "" && current {
		ks.token = tok
		ks.unnamedMark = false
	}
	m.persist(ks)
	if ks.token != nil && !m.namedOrSelf(ks.key) {
		// No role names the key (its role was deleted while the request ran): it stops
		// being cached once its token is stored.
		m.evict(ks)
	}
}

// keyNamed is namedOrSelf(ks.key), kept in ks until the roles or the config change (a
// periodic run asks it of every key each minute).
func (m *Machine) keyNamed(ks *keyState) bool {
	if ks.namedGen != m.roles.gen {
		ks.named, ks.namedGen = m.namedOrSelf(ks.key), m.roles.gen
	}
	return ks.named
}

// namedOrSelf reports whether the key is to stay cached: a role names it, the roles are not
// known yet, or it is the application's SELF key (the token that verified the config is
// cached on purpose: a SELF role will read it).
func (m *Machine) namedOrSelf(k Key) bool {
	if !m.roles.known || k.Type == TypeSelf || m.cfg == nil {
		return true
	}
	return m.roles.named(m.cfg.ClientID, k)
}

// entry is what storage should hold for the key: its latest fact, with the refusal of its
// account and whether a role names it.
func (ks *keyState) entry(credentials string) (Token, bool) {
	var e Token
	switch {
	case ks.fact != nil:
		e = *ks.fact
	case ks.refused != nil:
		e = Token{Key: ks.key, Credentials: credentials}
	default:
		return Token{}, false
	}
	e.Unnamed = ks.unnamedMark && e.Retired == ""
	e.RefusedUntil, e.RefusedReason = time.Time{}, ""
	if ks.refused != nil {
		e.RefusedUntil, e.RefusedReason = ks.refused.Until, ks.refused.Text()
	}
	return e, true
}

// persist writes the key's entry, after the write in flight if there is one.
func (m *Machine) persist(ks *keyState) {
	ks.dirty = true
	m.flush(ks)
}

// flush starts the key's next write, if none is in flight: a drop's fact first (the drop
// waits for it), else the key's entry if memory changed since the last write.
func (m *Machine) flush(ks *keyState) {
	if ks.writing != 0 {
		return
	}
	for ks.waits != nil && len(ks.waits.dropQueue) > 0 {
		d := ks.waits.dropQueue[0]
		ks.waits.dropQueue = ks.waits.dropQueue[1:]
		ks.tidyWaits()
		if _, ok := m.drops[d.id]; !ok {
			continue
		}
		entry := *d.tok.retired(RetiredDropped)
		entry.Unnamed, entry.RefusedUntil, entry.RefusedReason = false, time.Time{}, ""
		m.startWrite(ks, &pendingWrite{ks: ks, entry: entry, drops: []DropID{d.id}})
		return
	}
	if !ks.dirty {
		return
	}
	entry, ok := ks.entry(ks.lastCreds(m))
	ks.dirty = false
	if !ok {
		// Nothing left to keep (a refusal dropped, say): storage forgets it too.
		m.startWrite(ks, &pendingWrite{ks: ks, delete: true})
		return
	}
	m.startWrite(ks, &pendingWrite{ks: ks, entry: entry})
}

func (m *Machine) startWrite(ks *keyState, w *pendingWrite) {
	ks.stored = nil
	id := WriteID(m.id())
	ks.writing = id
	m.writes[id] = w
	if w.delete {
		k := ks.key
		m.emit(Delete{Write: id, StorageKey: k.StorageKey(), Key: &k})
		return
	}
	m.emit(Store{Write: id, Entry: w.entry})
}

func (ks *keyState) lastCreds(m *Machine) string {
	if m.cfg != nil {
		return m.cfg.Credentials
	}
	return m.lastCreds
}

// pendingWrite is a storage write of the machine in flight.
type pendingWrite struct {
	ks     *keyState
	entry  Token
	delete bool
	// drops wait for this write to land (a drop's fact).
	drops []DropID
	// swept: the sweep's rewrite of an expired token's entry as its fact; was is what
	// memory knew of the key before it.
	swept bool
	was   *Token
}

func (m *Machine) written(e Written) {
	w, ok := m.writes[e.Write]
	if !ok {
		return
	}
	delete(m.writes, e.Write)
	ks := w.ks
	if ks == nil {
		return // a delete of an entry no key in memory owns
	}
	ks.writing = 0
	switch {
	case len(w.drops) > 0:
		for _, id := range w.drops {
			if d, ok := m.drops[id]; ok {
				if e.Err != nil {
					m.dropFailed(d, ks, e.Err)
				} else {
					m.dropApplied(d, ks, e.Now)
				}
			}
		}
	case w.delete:
		if e.Err != nil {
			m.warn("deleting a stale cached token failed", "error", e.Err)
		}
	case w.swept && e.Err != nil:
		// Storage still holds the expired token, which counts the key as well; the next
		// sweep rewrites it (a periodic run's retry every minute would be a write storm
		// while storage refuses writes).
		// Memory goes back to the token storage holds (so a forgotten key's summary is the
		// token, which the next sweep finds stale again); a key known only from the sweep
		// keeps the fact, not loaded (the next sweep decodes the entry, its time being past).
		if ks.fact != nil && ks.fact.Retired == RetiredExpired && !ks.dirty {
			if w.was != nil {
				ks.fact = w.was
			}
			// Not loaded, as after an eviction: the fact is an expired token, which nothing
			// may take for the cache (a config write caches a loaded servable fact).
			ks.loaded = false
		}
		m.warn("keeping the fact of an expired token failed; the next sweep tries again", m.keyArgs(ks, "error", e.Err)...)
	case e.Err != nil:
		// The token (or what is known of it) is good; only the copy for restarts is
		// missing: the periodic run writes it again (not at once: storage is failing).
		ks.unstored, ks.dirty = true, true
		m.warn("storing token failed; it is cached in memory only", m.keyArgs(ks, "error", e.Err)...)
		if ks.waits != nil && len(ks.waits.dropQueue) > 0 {
			m.flush(ks)
		}
		return
	case !ks.dirty:
		ks.unstored = false
	}
	m.flush(ks)
	if ks.writing == 0 && ks.evictStored {
		m.evict(ks)
	}
}

// evict stops caching a key in memory (its token expired, or no role names it): it is not
// renewed any more, and a read loads it from storage again. A token memory holds but
// storage may not (a write failed or is under way) is stored first.
func (m *Machine) evict(ks *keyState) {
	if ks.token == nil {
		ks.evictStored = false
		return
	}
	if ks.writing != 0 || ks.dirty || ks.unstored {
		ks.evictStored = true
		m.flush(ks)
		return
	}
	ks.evictStored = false
	if !m.namedOrSelf(ks.key) && !ks.unnamedMark {
		m.unnamed[ks.key] = true
	}
	ks.token = nil
	ks.loaded = false
}

// keyArgs are a log line's fields for ks — its type, its account and the roles that name it,
// so that an operator of a hundred sellers can act on it — followed by more.
func (m *Machine) keyArgs(ks *keyState, more ...any) []any {
	args := []any{"type", ks.key.Type}
	if ks.key.AccountID != "" {
		args = append(args, "account_id", ks.key.AccountID)
	}
	if m.cfg != nil && m.roles.known {
		args = append(args, "roles", m.roles.naming(m.cfg.ClientID, ks.key))
	}
	return append(args, more...)
}
