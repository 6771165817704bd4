package core

import (
	"fmt"
	"iter"
	"sort"
	"strings"
	"time"
)

// Options configure a Machine; the zero value is production.
type Options struct {
	// RenewAtWindowStart renews every token as soon as Naver's window opens, without the
	// per-key spread: for tests of the window's start.
	RenewAtWindowStart bool
}

// Machine is the decision core of one mount. It is not safe for concurrent use: the
// plugin steps it under one lock.
type Machine struct {
	cfg *Config
	// lastCreds are the credentials of the last config in force (a delete keeps them).
	lastCreds string
	// superseded holds the credentials a config write on this node replaced: a token of
	// them that arrives later is stored as its fact only.
	superseded  map[string]bool
	spreadWidth time.Duration

	// verifyFailed: by credentials and base URL, a config write's verification Naver failed (see
	// runVerify).
	verifyFailed map[string]*Failure

	roles roleSet
	tries map[string]*tries // per many-seller role
	// triesWait are, per role, the requests waiting for a try of the role to end.
	triesWait map[string][]ReqID
	// sweepWait are the requests waiting for the sweep (see admit).
	sweepWait []ReqID
	// keys are the keys in memory, by their entries' IDs: the sweep and other nodes' writes
	// name entries, reads name keys, and one map for both is ~100 bytes less per cached key
	// than a second one by Key. Two keys share an ID only when their String()s are equal,
	// which client_id and account_id allow ("|" is a printable character): the later of two
	// such keys lives in clashes (nearly always empty). See state and allKeys.
	keys     map[StoreID]*keyState
	clashes  map[Key]*keyState
	apps     map[string]*appState
	reqs     map[ReqID]*request
	reads    map[ReadID]*pendingRead
	drops    map[DropID]*pendingDrop
	verifies map[VerifyID]*pendingVerify
	writes   map[WriteID]*pendingWrite
	counts   map[WriteID]*appState
	// stored summarises, by storage key, the entries the sweep found of keys not in memory
	// (see status); sweepSeen are the storage keys the sweep under way has read.
	stored      map[string]*Token
	sweepSeen   map[string]bool
	storedKnown bool
	sweeping    bool
	partOut     bool // a part of the sweep is being read
	lastSweep   time.Time
	renew       renewState
	// unnamed are keys evicted because no role names them whose stored entries are yet to
	// be marked unnamed (the periodic run marks them).
	unnamed map[Key]bool

	// useMemo is not state: it is what inUse counted last (see inUse).
	useMemo useMemo

	nextID  uint64
	out     []Effect
	closing bool
}

// renewState is the periodic run's renewals: the keys due, and how many are in flight.
type renewState struct {
	open     bool
	queue    []*keyState
	inflight int
}

// New makes a machine with nothing known: no config, no roles, nothing loaded.
func New(opts Options) *Machine {
	m := &Machine{
		superseded: map[string]bool{}, spreadWidth: RenewSpreadWidth,
		tries: map[string]*tries{}, triesWait: map[string][]ReqID{}, keys: map[StoreID]*keyState{}, clashes: map[Key]*keyState{},
		apps: map[string]*appState{}, reqs: map[ReqID]*request{}, reads: map[ReadID]*pendingRead{},
		drops: map[DropID]*pendingDrop{}, verifies: map[VerifyID]*pendingVerify{}, writes: map[WriteID]*pendingWrite{},
		counts: map[WriteID]*appState{}, stored: map[string]*Token{}, unnamed: map[Key]bool{},
		verifyFailed: map[string]*Failure{},
	}
	if opts.RenewAtWindowStart {
		m.spreadWidth = 0
	}
	m.roles.init()
	return m
}

// Ready hands out the effects decided since the last call, in order.
func (m *Machine) Ready() []Effect {
	out := m.out
	m.out = nil
	return out
}

// HasReady reports whether effects wait to be handed out.
func (m *Machine) HasReady() bool { return len(m.out) > 0 }

func (m *Machine) emit(e Effect) { m.out = append(m.out, e) }

func (m *Machine) id() uint64 {
	m.nextID++
	return m.nextID
}

func (m *Machine) warn(msg string, args ...any) { m.emit(Log{Warn: true, Msg: msg, Args: args}) }

// Step hands the machine one event.
func (m *Machine) Step(ev Event) {
	now := ev.at()
	switch e := ev.(type) {
	case Read:
		m.read(e)
	case ReadGone:
		m.readGone(e)
	case Drop:
		m.drop(e)
	case ProbeResult:
		m.probeResult(e)
	case Answer:
		m.answer(e)
	case AttemptAsk:
		m.attemptAsk(e)
	case AttemptSending:
		m.attemptSending(e)
	case Loaded:
		m.loaded(e)
	case Written:
		m.written(e)
	case CountsLoaded:
		m.countsLoaded(e)
	case CountsWritten:
		m.countsWritten(e)
	case ConfigSet:
		m.configSet(e)
	case Verify:
		m.verify(e)
	case Seed:
		m.seed(e)
	case RolesLoaded:
		m.rolesLoaded(e)
	case RoleSet:
		m.roleSet(e)
	case EntryChanged:
		m.entryChanged(e)
	case Tick:
		m.tick(e)
	case TickEnd:
		m.tickEnd(now)
	case Swept:
		m.swept(e)
	case SweepNow:
		switch {
		case m.sweeping:
			m.sweepPart()
		case !m.storedKnown:
			m.lastSweep = time.Time{}
			m.sweepIfDue(now)
		}
	case Closing:
		m.closing = true
	default:
		panic(fmt.Sprintf("core: unknown event %T", ev))
	}
}

// TickEnd: the periodic run returned (its deadline passed): renewals not started yet wait
// for the next run.
type TickEnd struct{ Now time.Time }

func (e TickEnd) at() time.Time  { return e.Now }
func (e TickEnd) String() string { return "tick-end" }

// Config is the config in force (nil: none).
func (m *Machine) Config() *Config { return m.cfg }

// sortedKeys returns the keys in memory in a stable order, so that effects come out in the
// same order for the same events.
func (m *Machine) sortedKeys() []*keyState {
	out := make([]*keyState, 0, len(m.keys)+len(m.clashes))
	for ks := range m.allKeys() {
		out = append(out, ks)
	}
	sortKeys(out)
	return out
}

func sortKeys(keys []*keyState) {
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i].key, keys[j].key) })
}

// keyLess orders keys by String() without building the strings (a periodic run sorts every
// key): keys of one application and type, nearly all of them, differ in the account alone.
func keyLess(a, b Key) bool {
	if a.ClientID == b.ClientID && a.Type == b.Type {
		return a.AccountID < b.AccountID
	}
	return a.String() < b.String()
}

// allKeys yields every key in memory, in no particular order.
func (m *Machine) allKeys() iter.Seq[*keyState] {
	return func(yield func(*keyState) bool) {
		for _, ks := range m.keys {
			if !yield(ks) {
				return
			}
		}
		for _, ks := range m.clashes {
			if !yield(ks) {
				return
			}
		}
	}
}

// state is the key's state in memory (nil: none).
func (m *Machine) state(k Key) *keyState {
	if ks := m.keys[k.StoreID()]; ks != nil && ks.key == k {
		return ks
	}
	return m.clashes[k]
}

// key returns the key's state, creating it.
func (m *Machine) key(k Key) *keyState {
	id := k.StoreID()
	first := m.keys[id]
	if first != nil && first.key == k {
		return first
	}
	if ks := m.clashes[k]; ks != nil {
		return ks
	}
	// The account ID is often a part of the request's path (token/<role>/<account>): a copy
	// of it does not keep the whole path alive for as long as the key is cached.
	k.AccountID = strings.Clone(k.AccountID)
	ks := &keyState{key: k, spreadHash: k.SpreadHash()}
	if first == nil {
		m.keys[id] = ks
	} else {
		m.clashes[k] = ks
	}
	sk := id.StorageKey()
	if s, ok := m.stored[sk]; ok {
		m.deleteStored(sk)
		m.setIssued(ks, IssuedAt(s))
		ks.stored = s
	}
	return ks
}

// byStorageKey is the state of the key in memory whose entry storageKey names (nil: none;
// of two keys that share the entry, the one in keys).
func (m *Machine) byStorageKey(storageKey string) *keyState {
	id, ok := ParseStoreID(storageKey)
	if !ok {
		return nil
	}
	return m.keys[id]
}

// sharedID reports whether another key in memory shares the entry ID id.
func (m *Machine) sharedID(id StoreID) bool {
	for k := range m.clashes {
		if k.StoreID() == id {
			return true
		}
	}
	return false
}

// forget drops a key's state: nothing in it counts any more.
func (m *Machine) forget(ks *keyState) {
	m.useMemo.add(m, ks.key, ks.issuedAt, -1)
	id := ks.key.StoreID()
	f := ks.fact
	if f == nil {
		f = ks.stored
	}
	if f != nil && m.keys[id] == ks && !m.sharedID(id) {
		// Its entry is stored (an idle key has no write under way): summarised, as the
		// sweep would, so that status lists it and the automatic budget counts its key.
		m.setStored(id.StorageKey(), summary(f))
	}
	if m.keys[id] != ks {
		delete(m.clashes, ks.key)
		return
	}
	delete(m.keys, id)
	// A key that shares the entry's ID takes its place, so that the entry still names it.
	for k, other := range m.clashes {
		if k.StoreID() == id {
			delete(m.clashes, k)
			m.keys[id] = other
			break
		}
	}
}

// IssuedAt is when Naver answered the key with t (when the request was sent; zero: Naver
// issued no token, the entry holds a refusal only): the key counts in the automatic
// application budget for a token's life from then.
func IssuedAt(t *Token) time.Time {
	if t == nil || t.Fingerprint == "" {
		return time.Time{}
	}
	return t.FetchedAt
}

// app returns the application's state, creating it.
func (m *Machine) app(clientID string) *appState {
	if a, ok := m.apps[clientID]; ok {
		return a
	}
	a := newAppState(clientID)
	m.apps[clientID] = a
	return a
}

// spread is the renewal spread in force: the config's renewal_spread within the cap.
func (m *Machine) spread() time.Duration {
	if m.cfg == nil {
		return m.spreadWidth
	}
	return min(m.cfg.Spread, m.spreadWidth)
}

// inUse counts the keys of clientID Naver issued a token to within a token's life: the
// automatic application budget grows with them (and only them: keys Naver refused, or
// never answered, do not make it larger). Counting walks every key, and every request asks
// (a periodic run of renewals once per renewal; onboarding 10,000 sellers, once per seller),
// so the count is kept (useMemo) and moved by each change of what it counts, until one of its
// keys' life ends or the roles or the config change.
func (m *Machine) inUse(clientID string, now time.Time) int {
	c := &m.useMemo
	if c.valid && c.clientID == clientID && !now.Before(c.at) && now.Before(c.until) {
		return c.n
	}
	*c = m.countInUse(clientID, now)
	return c.n
}

// countInUse counts inUse's keys afresh.
func (m *Machine) countInUse(clientID string, now time.Time) useMemo {
	c := useMemo{valid: true, clientID: clientID, at: now, until: now.Add(TokenLifetime)}
	count := func(k Key, at time.Time) {
		if k.ClientID != clientID || at.IsZero() || now.Sub(at) >= TokenLifetime || !m.namedOrSelf(k) {
			return
		}
		c.n++
		if end := at.Add(TokenLifetime); end.Before(c.until) {
			c.until = end
		}
	}
	for ks := range m.allKeys() {
		count(ks.key, ks.issuedAt)
	}
	for _, t := range m.stored {
		count(t.Key, IssuedAt(t))
	}
	return c
}

// useMemo is inUse's count for clientID, valid from at until until (the first of the
// counted keys' lives to end).
type useMemo struct {
	valid     bool
	clientID  string
	n         int
	at, until time.Time
}

// add moves the count by a change: sign 1 for key k issued at, -1 for what it was.
func (c *useMemo) add(m *Machine, k Key, at time.Time, sign int) {
	if !c.valid || k.ClientID != c.clientID || at.IsZero() || c.at.Sub(at) >= TokenLifetime || !m.namedOrSelf(k) {
		return
	}
	c.n += sign
	// A time ahead of the clock (it stepped back) counts as now: its life ends no sooner.
	if end := at.Add(TokenLifetime); sign > 0 && end.Before(c.until) {
		c.until = end
	}
}

// changedUse says that whether a key counts changed for every key (the roles or the
// config changed): the next inUse counts afresh.
func (m *Machine) changedUse() { m.useMemo.valid = false }

// CheckCaches reports a cache of the machine that disagrees with what it caches (for the
// model checker, after every event).
func (m *Machine) CheckCaches() error {
	for ks := range m.allKeys() {
		if ks.namedGen == m.roles.gen && ks.named != m.namedOrSelf(ks.key) {
			return fmt.Errorf("core: %s kept as named=%t, the roles say %t", ks.key, ks.named, !ks.named)
		}
	}
	c := m.useMemo
	if !c.valid {
		return nil
	}
	if fresh := m.countInUse(c.clientID, c.at); fresh.n != c.n || c.until.After(fresh.until) {
		return fmt.Errorf("core: keys in use of %s at %s: kept %d until %s, counted %d until %s",
			c.clientID, c.at.Format(time.RFC3339), c.n, c.until.Format(time.RFC3339), fresh.n, fresh.until.Format(time.RFC3339))
	}
	return nil
}

// setIssued records when Naver last issued ks a token.
func (m *Machine) setIssued(ks *keyState, at time.Time) {
	if at.After(ks.issuedAt) {
		m.useMemo.add(m, ks.key, ks.issuedAt, -1)
		ks.issuedAt = at
		m.useMemo.add(m, ks.key, at, 1)
	}
}

// setStored and deleteStored change the summaries of entries of keys not in memory.
func (m *Machine) setStored(storageKey string, t *Token) {
	m.deleteStored(storageKey)
	m.stored[storageKey] = t
	m.useMemo.add(m, t.Key, IssuedAt(t), 1)
}

func (m *Machine) deleteStored(storageKey string) {
	if old, ok := m.stored[storageKey]; ok {
		m.useMemo.add(m, old.Key, IssuedAt(old), -1)
		delete(m.stored, storageKey)
	}
}

// verifyKey names what a verification proves: the credentials at the base URL (a write that
// fixes the base URL after a failed one is not held back by the failure).
func (c Config) verifyKey() string { return c.Credentials + "\x00" + c.Endpoint }
