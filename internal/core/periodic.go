package core

import (
	"sort"
	"time"
)

// markUnnamedPerTick bounds the entries one periodic run marks unnamed (a many-seller role's
// delete may leave thousands).
const markUnnamedPerTick = 200

// tick is the periodic work: entries whose write failed are written again, expired tokens
// and keys no role names stop being cached, idle keys are forgotten, storage is swept once
// an hour, and the tokens in Naver's window that were read within their life are renewed,
// RenewConcurrency at a time, until the run ends (TickDone, or TickEnd at its deadline).
func (m *Machine) tick(e Tick) {
	now := e.Now
	// The last run's renewals may still be at Naver: they count against this run's.
	m.renew = renewState{open: true, inflight: m.renew.inflight}
	// One pass over every key, then only the keys with something to do, in a stable order:
	// sorting every key each minute cost more than the rest of the run (what one key does
	// here changes nothing another key is judged by).
	var acting []*keyState
	for ks := range m.allKeys() {
		ks.log.trim(now)
		if m.tickActs(ks, now) {
			acting = append(acting, ks)
		}
	}
	sortKeys(acting)
	for _, ks := range acting {
		if ks.unstored {
			m.flush(ks)
		}
		tok := ks.token
		switch {
		case tok == nil:
			if m.idle(ks, now) {
				m.forget(ks)
			}
			continue
		case tok.Life(now) <= 0:
			if f := ks.failed(); now.Before(f.backoffUntil) || now.Before(f.nextBackground) {
				// The key's back-off (perhaps Naver's Retry-After) outlives its token.
				ks.token = nil
			} else {
				m.evict(ks)
			}
			continue
		case !m.keyNamed(ks):
			m.evict(ks)
			continue
		}
		if m.cfg == nil {
			continue
		}
		if m.renewsAhead(ks, now) {
			ks.renewQueued = true
			m.renew.queue = append(m.renew.queue, ks)
		}
	}
	m.markUnnamed()
	m.renewNext(now)
	// Last: the plugin reads storage for the sweep once the renewals are on their way.
	if m.sweeping {
		m.sweepPart() // the part not read yet
	} else {
		m.sweepIfDue(now)
	}
}

// tickActs reports whether the periodic run has anything to do about ks (no effect: it
// only looks).
func (m *Machine) tickActs(ks *keyState, now time.Time) bool {
	tok := ks.token
	switch {
	case ks.unstored:
		return true
	case tok == nil:
		return m.idle(ks, now)
	case tok.Life(now) <= 0, !m.keyNamed(ks):
		return true
	case m.cfg == nil:
		return false
	}
	return m.renewsAhead(ks, now)
}

// renewsAhead reports whether the periodic run renews ks ahead of its reads: its token is
// due, it was read within a token's life, no back-off holds it and a role names it.
func (m *Machine) renewsAhead(ks *keyState, now time.Time) bool {
	t := ks.servable(m.cfg.Credentials)
	return t != nil && m.cfg.Ahead && m.isDue(ks, t, now) &&
		now.Sub(ks.lastRead) < t.ExpiresAt.Sub(t.FetchedAt) && !now.Before(ks.failed().nextBackground) && m.renewable(ks.key)
}

// renewable reports whether background renewal may renew key: a role names it (keys no
// role names are never renewed; before the roles are known, one read it since the start).
func (m *Machine) renewable(k Key) bool {
	if !m.roles.known {
		return true
	}
	return m.roles.named(m.cfg.ClientID, k)
}

// idle reports whether nothing in the key's state counts any more.
func (m *Machine) idle(ks *keyState, now time.Time) bool {
	f := ks.failed()
	return ks.inflight == nil && !ks.loading && ks.writing == 0 && !ks.dirty && !ks.unstored &&
		!ks.waitedOn() && !ks.renewQueued && (ks.refused == nil || !now.Before(ks.refused.Until)) &&
		now.Sub(ks.lastRead) > IdleKeyLifetime && now.Sub(ks.log.last()) >= 24*time.Hour &&
		!now.Before(f.backoffUntil) && !now.Before(f.nextBackground)
}

// renewNext starts the periodic run's next renewals, RenewConcurrency at a time.
func (m *Machine) renewNext(now time.Time) {
	for m.renew.open && m.renew.inflight < RenewConcurrency && len(m.renew.queue) > 0 {
		ks := m.renew.queue[0]
		m.renew.queue = m.renew.queue[1:]
		ks.renewQueued = false
		if m.cfg == nil {
			continue
		}
		// A read may have renewed it, or started its renewal, since the run began.
		t := ks.servable(m.cfg.Credentials)
		if t == nil || !m.isDue(ks, t, now) || t.Life(now) <= 0 || !m.namedOrSelf(ks.key) {
			continue
		}
		if m.renewBehind(ks, now, true) {
			m.renew.inflight++
		}
	}
	if m.renew.open && len(m.renew.queue) == 0 && m.renew.inflight == 0 {
		m.renew.open = false
		m.emit(TickDone{})
	}
}

// tickEnd: the periodic run returned; what it did not start waits for the next run.
func (m *Machine) tickEnd(time.Time) {
	for _, ks := range m.renew.queue {
		ks.renewQueued = false
	}
	m.renew.queue = nil
	m.renew.open = false
}

// markUnnamed marks the stored entries of keys evicted because no role names them, unless a
// role names the key again or it is cached again.
func (m *Machine) markUnnamed() {
	keys := make([]Key, 0, len(m.unnamed))
	for k := range m.unnamed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for i, k := range keys {
		if i == markUnnamedPerTick {
			break
		}
		delete(m.unnamed, k)
		ks := m.state(k)
		if ks == nil || ks.token != nil || ks.unnamedMark || ks.fact == nil || m.namedOrSelf(k) {
			continue
		}
		ks.unnamedMark = true
		m.persist(ks)
	}
}

// sweepIfDue starts a sweep of storage once an hour. The plugin reads it in parts (see
// Sweep): a part each periodic run, until it reports the last.
func (m *Machine) sweepIfDue(now time.Time) {
	if m.lastSweep.After(now) {
		m.lastSweep = now // the clock stepped back
	}
	if m.sweeping || (!m.lastSweep.IsZero() && now.Sub(m.lastSweep) < SweepInterval) {
		return
	}
	m.sweeping = true
	m.lastSweep = now
	m.sweepSeen = map[string]bool{}
	m.sweepPart()
}

// sweepPart asks for the next part of the sweep unless one is being read.
func (m *Machine) sweepPart() {
	if m.partOut {
		return
	}
	m.partOut = true
	m.emit(Sweep{})
}

// swept takes what the sweep read: entries nothing is known of any more are deleted (but
// never one of a newer format: a rollback must not lose what the newer version knows), and
// entries of keys not in memory are summarised for status.
func (m *Machine) swept(e Swept) {
	now := e.Now
	m.partOut = false
	for _, se := range e.Entries {
		if m.sweepSeen != nil {
			m.sweepSeen[se.StorageKey] = true
		}
		ks := m.byStorageKey(se.StorageKey)
		if se.Undecodable {
			if !se.Newer && ks == nil {
				id := WriteID(m.id())
				m.writes[id] = &pendingWrite{delete: true}
				m.emit(Delete{Write: id, StorageKey: se.StorageKey})
			}
			continue
		}
		var tok *Token
		switch {
		case se.Token != nil:
			if se.Token.Key.StorageKey() != se.StorageKey {
				continue
			}
			tok = se.Token
		case ks == nil:
			tok = m.stored[se.StorageKey]
		}
		knownUntil := se.KnownUntil
		if tok != nil && tok.KnownUntil().After(knownUntil) {
			// An undecoded entry is judged on what the plugin read of it, never on an older
			// summary (another node may have written the entry since).
			knownUntil = tok.KnownUntil()
		}
		if ks != nil {
			// A key in memory counts from its entry too: its load may still be out (or have
			// failed) when the sweep ends, and the budget is then judged on the sweep.
			// (Not when two keys share the entry's ID: the entry may be the other's.)
			switch {
			case tok != nil && tok.Key == ks.key:
				m.setIssued(ks, IssuedAt(tok))
				if !ks.loaded && ks.fact == nil {
					ks.stored = summary(tok) // what the entry holds now
				}
			case tok == nil && len(m.clashes) == 0:
				m.setIssued(ks, se.IssuedAt)
			}
			// What memory knows may be newer than the copy the sweep read (a refusal, say).
			if e, ok := ks.entry(ks.lastCreds(m)); ok && e.KnownUntil().After(knownUntil) {
				knownUntil = e.KnownUntil()
			}
		}
		if !now.Before(knownUntil) {
			if tok == nil && (ks == nil || ks.fact == nil) && now.Before(se.IssuedAt.Add(TokenLifetime)) {
				// Neither the sweep nor memory holds what the entry says (the key's load is out
				// or failed, or it was forgotten), and its key may still count: never deleted
				// blind; a later sweep decodes it.
				continue
			}
			m.deleteStale(ks, tok, se.StorageKey, now)
			continue
		}
		if ks == nil && tok != nil {
			if m.cfg != nil && m.roles.known && tok.Retired == "" && tok.Credentials == m.cfg.Credentials && !tok.Unnamed && !m.namedOrSelf(tok.Key) {
				// Its role went while the plugin was down (or before it could mark it): the
				// entry says so, for a rollback's start. A summary holds no token: the entry
				// is read first. Naver issued the key its token all the same: it counts again
				// once a role names it.
				ks = m.key(tok.Key)
				m.setIssued(ks, IssuedAt(tok))
				if se.Token != nil {
					ks.learn(tok, true)
					ks.loaded = true
					ks.unnamedMark = true
					m.persist(ks)
				} else {
					ks.markWhenLoaded = true
					m.load(ks)
				}
				continue
			}
			if se.Token != nil {
				m.setStored(se.StorageKey, summary(tok))
			}
		}
	}
	if !e.Done {
		if len(m.sweepWait) > 0 {
			m.sweepPart() // requests wait for it: the next part at once
		}
		return
	}
	m.sweeping = false
	if e.Failed {
		m.lastSweep = time.Time{} // the next periodic run sweeps again
		m.sweepSeen = nil
		m.sweepEnded(now)
		return
	}
	m.storedKnown = true
	for sk := range m.stored {
		if m.sweepSeen != nil && !m.sweepSeen[sk] {
			m.deleteStored(sk)
		}
	}
	m.sweepSeen = nil
	m.sweepEnded(now)
}

// deleteStale deletes a stale entry, in its key's order of writes when the key is in memory;
// an entry whose token expired while its key still counts in the automatic application
// budget keeps the token's fact instead, until the key stops counting.
func (m *Machine) deleteStale(ks *keyState, tok *Token, storageKey string, now time.Time) {
	if ks == nil && tok != nil {
		m.deleteStored(storageKey)
		ks = m.key(tok.Key)
	}
	if ks != nil {
		// A token that lived less than a token's life (Naver issued it with little, or it
		// was unusable) leaves its entry before its key leaves the automatic budget: the
		// key still counts for the rest of the 3 hours from its issue.
		m.setIssued(ks, IssuedAt(tok))
	}
	if ks == nil {
		id := WriteID(m.id())
		m.writes[id] = &pendingWrite{delete: true}
		m.emit(Delete{Write: id, StorageKey: storageKey})
		return
	}
	if ks.writing != 0 || ks.dirty || ks.inflight != nil || ks.token != nil || (ks.waits != nil && len(ks.waits.dropQueue) > 0) {
		return // the key moved on meanwhile: the next sweep judges it again
	}
	if tok == nil {
		tok = ks.fact
	}
	if tok != nil && tok.AccessToken != "" && now.Before(tok.countsUntil()) {
		// A token that lived less than a token's life (issued with little, or handed back):
		// a restart must still count its key, so the entry keeps the fact, without the token.
		// If the write fails, memory goes back to what storage holds, and the next sweep
		// tries again (as with a failed delete), not every periodic run.
		was := ks.fact
		ks.learn(tok.retired(RetiredExpired), true)
		ks.loaded = true
		if e, ok := ks.entry(ks.lastCreds(m)); ok {
			m.startWrite(ks, &pendingWrite{ks: ks, entry: e, swept: true, was: was})
		}
		return
	}
	ks.fact, ks.loaded, ks.unnamedMark = nil, false, false
	m.startWrite(ks, &pendingWrite{ks: ks, delete: true})
}

// summary is what the machine keeps of an entry it has not loaded: everything but the token.
func summary(t *Token) *Token {
	s := *t
	if s.AccessToken != "" {
		s.AccessToken = storedMarker
	}
	return &s
}

// storedMarker stands in a summary for a token that storage holds: never served.
const storedMarker = "(stored)"

func (m *Machine) entryChanged(e EntryChanged) {
	if ks := m.byStorageKey(e.StorageKey); ks != nil {
		// Another node wrote the key: what memory has may be stale; the next use reads it.
		ks.token, ks.loaded, ks.stored = nil, false, nil
		return
	}
	m.deleteStored(e.StorageKey)
}

func (m *Machine) configSet(e ConfigSet) {
	defer m.changedUse() // whether a role names a key depends on the config's client
	if e.Config == nil {
		// Stored tokens stay until they expire: they are served only under the credentials
		// they came from, so only a config with those very credentials serves them again.
		m.cfg = nil
		m.roles.gen++
		for ks := range m.allKeys() {
			ks.token, ks.loaded = nil, false
		}
		return
	}
	cfg := *e.Config
	credsChanged := m.lastCreds != "" && m.lastCreds != cfg.Credentials
	if credsChanged {
		// Tokens belong to the credentials they were fetched with: none of the old ones is
		// served again (Naver invalidates an old secret at once). What is known of them stays.
		for ks := range m.allKeys() {
			ks.token, ks.loaded = nil, false
		}
	}
	if e.Written && e.RetireOthers && m.lastCreds != "" && m.lastCreds != cfg.Credentials {
		m.superseded[m.lastCreds] = true
	}
	if e.RetireOthers {
		m.emit(Retire{Keep: cfg.Credentials})
	}
	delete(m.superseded, cfg.Credentials)
	m.cfg, m.lastCreds = &cfg, cfg.Credentials
	m.roles.gen++
	for ks := range m.allKeys() {
		// Loaded while no config (or another) was in force: its stored token is this
		// config's to serve.
		if ks.loaded && ks.token == nil && ks.fact.Servable(cfg.Credentials) && ks.fact.Life(e.Now) > 0 && !ks.evictStored {
			ks.token = ks.fact
		}
	}
	app := m.app(cfg.ClientID)
	if moved := app.resetBreaker(cfg.Endpoint); moved || credsChanged {
		// A failure under the old credentials never delays the new ones, also when the config
		// later returns to them: each key's back-off is forgotten now, not kept for them. What
		// a key owes the pace is for Naver failing at the old address: a new address starts
		// every key with its burst, as it starts the breaker closed. The hourly budget still
		// counts every request sent, and the pause after a handed-back token stays (it is
		// Naver's token, not a failure).
		for ks := range m.allKeys() {
			if moved {
				ks.log.forgetPace()
			}
			if f := ks.failed(); credsChanged && (f.failures > 0 || f.lastFailure != nil) {
				ks.setFailed(keyFailures{notBefore: f.notBefore})
			}
		}
	}
	if !app.loaded && !app.loading {
		app.loading = true
		m.emit(LoadCounts{ClientID: app.clientID})
	}
}

func (m *Machine) rolesLoaded(e RolesLoaded) {
	m.roles.init()
	names := make([]string, 0, len(e.Roles))
	for n := range e.Roles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := e.Roles[n]
		m.roles.set(n, &r)
	}
	m.roles.known = true
	m.roles.gen++
	m.changedUse()
	m.evictUnnamed()
}

func (m *Machine) roleSet(e RoleSet) {
	old, had := m.roles.byName[e.Name]
	// The role's tries stay: deleting and re-creating it must not reset its bound.
	m.roles.set(e.Name, e.Role)
	m.changedUse()
	if had && m.cfg != nil {
		// The role's min_remaining_ttl may be gone or lower: the next reads set it again.
		for ks := range m.allKeys() {
			if old.Names(m.cfg.ClientID, ks.key) {
				ks.minLife = 0
			}
		}
	}
	if m.roles.known {
		m.evictUnnamed()
	}
}

// evictUnnamed stops caching the keys no role names. Stored tokens not in memory that no role
// names any more have their entries marked by the next periodic run's sweep.
func (m *Machine) evictUnnamed() {
	// One pass over the keys, then those to evict in a fixed order (not every key sorted:
	// a role write at 10,000 sellers holds every read meanwhile).
	var unnamed []*keyState
	for ks := range m.allKeys() {
		if ks.token != nil && !m.namedOrSelf(ks.key) {
			unnamed = append(unnamed, ks)
		}
	}
	sort.Slice(unnamed, func(i, j int) bool { return unnamed[i].key.String() < unnamed[j].key.String() })
	for _, ks := range unnamed {
		m.evict(ks)
	}
	if m.cfg == nil || m.sweeping {
		return
	}
	for _, t := range m.stored {
		if t.Retired == "" && !t.Unnamed && !m.namedOrSelf(t.Key) {
			m.lastSweep = time.Time{}
			return
		}
	}
}
