package core

import (
	"fmt"
	"sort"
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

	roles roleSet
	tries map[string]*tries // per many-seller role
	// triesWait are, per role, the requests waiting for a try of the role to end.
	triesWait map[string][]ReqID
	keys      map[Key]*keyState
	byStore   map[string]*keyState
	apps      map[string]*appState
	reqs      map[ReqID]*request
	reads     map[ReadID]*pendingRead
	drops     map[DropID]*pendingDrop
	verifies  map[VerifyID]*pendingVerify
	writes    map[WriteID]*pendingWrite
	counts    map[WriteID]*appState
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
		tries: map[string]*tries{}, triesWait: map[string][]ReqID{}, keys: map[Key]*keyState{}, byStore: map[string]*keyState{},
		apps: map[string]*appState{}, reqs: map[ReqID]*request{}, reads: map[ReadID]*pendingRead{},
		drops: map[DropID]*pendingDrop{}, verifies: map[VerifyID]*pendingVerify{}, writes: map[WriteID]*pendingWrite{},
		counts: map[WriteID]*appState{}, stored: map[string]*Token{}, unnamed: map[Key]bool{},
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
	out := make([]*keyState, 0, len(m.keys))
	for _, ks := range m.keys {
		out = append(out, ks)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key.String() < out[j].key.String() })
	return out
}

// key returns the key's state, creating it.
func (m *Machine) key(k Key) *keyState {
	if ks, ok := m.keys[k]; ok {
		return ks
	}
	ks := &keyState{key: k, spreadHash: k.SpreadHash()}
	sk := k.StorageKey()
	m.keys[k] = ks
	m.byStore[sk] = ks
	if s, ok := m.stored[sk]; ok {
		ks.issuedAt = issuedAt(s)
		delete(m.stored, sk)
	}
	return ks
}

// forget drops a key's state: nothing in it counts any more.
func (m *Machine) forget(ks *keyState) {
	delete(m.keys, ks.key)
	delete(m.byStore, ks.key.StorageKey())
}

func issuedAt(t *Token) time.Time {
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
// never answered, do not make it larger).
func (m *Machine) inUse(clientID string, now time.Time) int {
	n := 0
	for k, ks := range m.keys {
		if k.ClientID == clientID && !ks.issuedAt.IsZero() && now.Sub(ks.issuedAt) < TokenLifetime && m.namedOrSelf(k) {
			n++
		}
	}
	for _, t := range m.stored {
		if at := issuedAt(t); t.Key.ClientID == clientID && !at.IsZero() && now.Sub(at) < TokenLifetime && m.namedOrSelf(t.Key) {
			n++
		}
	}
	return n
}
