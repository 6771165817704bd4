package core

import (
	"sort"
	"time"
)

// KeyView is what status reports of one key: never the token itself.
type KeyView struct {
	Key Key
	// Roles are the roles that name the key; RolesKnown is false until every stored role was
	// loaded (then Roles lists only what is known).
	Roles      []string
	RolesKnown bool
	// FetchedAt, ExpiresAt and RenewAt are zero when the key holds no token with life left
	// under the config's credentials.
	FetchedAt time.Time
	ExpiresAt time.Time
	RenewAt   time.Time
	LastRead  time.Time // zero: not read since the plugin started
	// Requests1h and Requests24h count HTTP requests to Naver, retries included.
	Requests1h     int
	Requests24h    int
	LastError      *KeyError
	BackoffUntil   time.Time
	NextBackground time.Time
	Failures       int
	// Refused: the key's last request was not sent (a budget, or the breaker while Naver
	// fails): its reads fail or are stale all the same.
	Refused bool
	// AccountRefused is set while Naver's refusal of the key's account holds.
	AccountRefused *AccountRefusedError
	// Stored: known from storage only (not read since the plugin started).
	Stored bool
}

// Knowledge says how complete what the machine knows is: every stored role loaded, and
// storage swept once since the start (so keys stored before it are known).
type Knowledge struct {
	RolesKnown  bool
	StoredKnown bool
}

// Knowledge reports how complete what the machine knows is.
func (m *Machine) Knowledge() Knowledge {
	return Knowledge{RolesKnown: m.roles.known, StoredKnown: m.storedKnown}
}

// CountsKnown reports whether the stored counts of the config's application were read.
func (m *Machine) CountsKnown() bool {
	if m.cfg == nil {
		return true
	}
	a, ok := m.apps[m.cfg.ClientID]
	return ok && a.loaded
}

// SweepPartOut reports whether a part of the sweep is being read.
func (m *Machine) SweepPartOut() bool { return m.partOut }

// Sweeping reports whether a sweep of storage is under way.
func (m *Machine) Sweeping() bool { return m.sweeping }

// Cached is the token the machine serves for key now (nil: none in memory).
func (m *Machine) Cached(k Key) *Token {
	if ks := m.state(k); ks != nil && m.cfg != nil {
		return ks.servable(m.cfg.Credentials)
	}
	return nil
}

// RolesKnown reports whether every stored role was loaded.
func (m *Machine) RolesKnown() bool { return m.roles.known }

// Keys reports the keys of the config's application that match (nil: every key), from
// memory and from what the sweep found in storage, sorted by key.
func (m *Machine) Keys(now time.Time, match func(Key) bool) []KeyView {
	if m.cfg == nil {
		return nil
	}
	var out []KeyView
	if match == nil {
		out = make([]KeyView, 0, len(m.keys)+len(m.clashes)+len(m.stored))
	}
	m.EachKey(now, match, func(v KeyView) { out = append(out, v) })
	names := make([]string, len(out))
	for i := range out {
		names[i] = out[i].Key.String()
	}
	sort.Sort(byName{out, names})
	return out
}

// EachKey hands f each key Keys reports, in no order (metrics need no order, and a
// scrape every 15 seconds of 10,000 keys should not sort them).
func (m *Machine) EachKey(now time.Time, match func(Key) bool, f func(KeyView)) {
	if m.cfg == nil {
		return
	}
	for ks := range m.allKeys() {
		if k := ks.key; k.ClientID == m.cfg.ClientID && (match == nil || match(k)) && m.shown(ks, now) {
			f(m.view(ks, now))
		}
	}
	for _, t := range m.stored {
		if t.Key.ClientID == m.cfg.ClientID && (match == nil || match(t.Key)) {
			if v, ok := m.storedView(t, now); ok {
				f(v)
			}
		}
	}
}

// shown reports whether status lists a key in memory: one that holds a token, failed,
// was refused, was read or asked Naver — not one only touched (a load that found nothing).
func (m *Machine) shown(ks *keyState, now time.Time) bool {
	if !m.namedOrSelf(ks.key) {
		return false // no role names it: not cached, not renewed, nothing to report
	}
	return ks.token != nil || ks.failed().lastFailure != nil || ks.lastError != nil || ks.refused != nil ||
		!ks.lastRead.IsZero() || len(ks.log.times) > 0 || ks.inflight != nil ||
		(ks.fact.Servable(m.cfg.Credentials) && ks.fact.Life(now) > 0)
}

// View reports one key, from memory or what the sweep found; ok is false when nothing is
// known of it.
func (m *Machine) View(now time.Time, k Key) (KeyView, bool) {
	if m.cfg == nil {
		return KeyView{Key: k}, false
	}
	if ks := m.state(k); ks != nil && m.shown(ks, now) {
		return m.view(ks, now), true
	}
	if t, ok := m.stored[k.StorageKey()]; ok {
		return m.storedView(t, now)
	}
	return KeyView{Key: k, RolesKnown: m.roles.known, Roles: m.roles.naming(m.cfg.ClientID, k)}, false
}

func (m *Machine) view(ks *keyState, now time.Time) KeyView {
	v := KeyView{Key: ks.key, RolesKnown: m.roles.known, Roles: m.roles.naming(m.cfg.ClientID, ks.key), LastRead: ks.lastRead}
	tok := ks.servable(m.cfg.Credentials)
	if tok == nil && !ks.loaded && ks.fact.Servable(m.cfg.Credentials) && m.namedOrSelf(ks.key) {
		tok = ks.fact // evicted from memory, but stored: a read serves it
	}
	if tok != nil && tok.Life(now) > 0 {
		v.FetchedAt, v.ExpiresAt, v.RenewAt = tok.FetchedAt, tok.ExpiresAt, m.renewAt(ks, tok)
		if early := tok.ExpiresAt.Add(-ks.minLife); early.Before(v.RenewAt) {
			v.RenewAt = early // a role's min_remaining_ttl
		}
	}
	v.Requests1h, _ = ks.log.since(now, time.Hour)
	v.Requests24h, _ = ks.log.since(now, 24*time.Hour)
	if ks.lastError != nil {
		e := *ks.lastError
		v.LastError = &e
	}
	f := ks.failed()
	v.BackoffUntil, v.NextBackground, v.Failures = f.backoffUntil, f.nextBackground, f.failures
	v.Refused = f.failures == 0 && f.lastFailure != nil
	if ks.refused != nil {
		r := *ks.refused
		v.AccountRefused = &r
	}
	return v
}

func (m *Machine) storedView(t *Token, now time.Time) (KeyView, bool) {
	v := KeyView{Key: t.Key, RolesKnown: m.roles.known, Roles: m.roles.naming(m.cfg.ClientID, t.Key), Stored: true}
	if t.RefusedUntil.After(now) {
		v.AccountRefused = &AccountRefusedError{Account: t.Key.AccountID, At: t.RefusedUntil.Add(-RefusedFor), Until: t.RefusedUntil, Reason: refusedReason(t.RefusedReason), Answer: t.RefusedReason}
	}
	if !m.namedOrSelf(t.Key) {
		return v, false
	}
	live := t.Retired == "" && t.AccessToken != "" && t.Credentials == m.cfg.Credentials && t.Life(now) > 0
	if live {
		v.FetchedAt, v.ExpiresAt, v.RenewAt = t.FetchedAt, t.ExpiresAt, t.RenewAt(SpreadOffset(t.Key.SpreadHash(), m.spread()))
	}
	return v, live || v.AccountRefused != nil
}

// AppView is what status reports of the application.
type AppView struct {
	// Requests1h counts the application's requests in the last hour, as its budget does
	// (kept in storage across restarts).
	Requests1h int
	Budget     int
	// FailingUntil is when the breaker lets a probe through (zero: closed).
	FailingUntil time.Time
	// InUse counts the keys Naver issued a token to within a token's life.
	InUse int
}

// App reports the application of the config in force.
func (m *Machine) App(now time.Time) AppView {
	if m.cfg == nil {
		return AppView{}
	}
	a := m.app(m.cfg.ClientID)
	inUse := m.inUse(m.cfg.ClientID, now)
	n, _ := a.lastHour(now)
	return AppView{Requests1h: n, Budget: a.budget(m.cfg, now, inUse), FailingUntil: a.failingUntil(), InUse: inUse}
}

// Requests counts the requests of every key in memory in the last hour and day.
func (m *Machine) Requests(now time.Time) (lastHour, last24h int) {
	for ks := range m.allKeys() {
		h, _ := ks.log.since(now, time.Hour)
		d, _ := ks.log.since(now, 24*time.Hour)
		lastHour, last24h = lastHour+h, last24h+d
	}
	return lastHour, last24h
}

// BackoffUntil is when reads of key may ask Naver again after a failure (zero: now).
func (m *Machine) BackoffUntil(k Key) time.Time {
	if ks := m.state(k); ks != nil {
		return ks.failed().backoffUntil
	}
	return time.Time{}
}

// byName sorts key views by their keys' strings, computed once.
type byName struct {
	keys  []KeyView
	names []string
}

func (b byName) Len() int           { return len(b.keys) }
func (b byName) Less(i, j int) bool { return b.names[i] < b.names[j] }
func (b byName) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.names[i], b.names[j] = b.names[j], b.names[i]
}

// Evicting reports whether key waits for its token to be stored before it stops being
// cached (no role names it any more).
func (m *Machine) Evicting(k Key) bool {
	ks := m.state(k)
	return ks != nil && ks.evictStored
}

// InFlight reports whether a token request of key is in flight.
func (m *Machine) InFlight(k Key) bool {
	ks := m.state(k)
	return ks != nil && ks.inflight != nil
}

// MemoryKeys lists the keys the machine holds state for, sorted.
func (m *Machine) MemoryKeys() []Key {
	out := make([]Key, 0, len(m.keys)+len(m.clashes))
	for _, ks := range m.sortedKeys() {
		out = append(out, ks.key)
	}
	return out
}
