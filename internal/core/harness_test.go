package core

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var origin = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// harness drives a machine with everything succeeding at once: storage as a map, Naver
// issuing a new 3-hour token to every request (or failing it, while fail is set).
type harness struct {
	t       *testing.T
	m       *Machine
	now     time.Time
	cfg     Config
	store   map[string]Token
	counts  *Counts
	queue   []Effect
	seq     int
	ids     uint64
	fail    *Outcome      // while set, Naver answers every request with this failure
	life    time.Duration // the life of the tokens Naver issues (0: 3 hours)
	sent    []Key         // every request that reached Naver
	served  map[ReadID]*Token
	warned  map[ReadID]*Failure // the warning a served read carried
	failed  map[ReadID]error
	countsW int // writes of the counts
	// pendingSends are requests waiting for the verdict on their first attempt.
	pendingSends map[ReqID]Key
	// holdCounts: writes of the counts wait in held until released.
	holdCounts bool
	held       []StoreCounts
	// probes are the drops' questions to Naver, left unanswered; dropsDone their answers.
	probes    []Probe
	dropsDone map[DropID]DropDone
	// skipChecks: no comparison of the caches with fresh counts after each step (for
	// measuring).
	skipChecks bool
	// holdSweep: Sweep effects are counted in sweepsHeld, not answered.
	holdSweep  bool
	sweepsHeld int
	// swept is what the sweep decoded, as the plugin keeps it (token_sweep.go): an entry
	// unchanged since, whose time has not passed, is handed over undecoded. A start forgets it.
	swept map[string]Token
	// verified are the verifications' answers.
	verified map[VerifyID]VerifyDone
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, now: origin, store: map[string]Token{}, served: map[ReadID]*Token{}, warned: map[ReadID]*Failure{}, failed: map[ReadID]error{}, pendingSends: map[ReqID]Key{}, dropsDone: map[DropID]DropDone{}, verified: map[VerifyID]VerifyDone{}}
	h.cfg = Config{ClientID: "app", Credentials: "c1", Endpoint: "e1", Ahead: true, PerHour: 12, Timeout: 10 * time.Second}
	h.start()
	return h
}

// start is a plugin start over the harness's storage.
func (h *harness) start() {
	h.m = New(Options{RenewAtWindowStart: true})
	h.swept = map[string]Token{}
	cfg := h.cfg
	h.step(ConfigSet{Now: h.now, Config: &cfg})
	h.step(RolesLoaded{Now: h.now, Roles: map[string]Role{"sellers": {Type: TypeSeller, Allowed: []string{"*"}, NewAccountsPerHour: 1000}}})
}

func (h *harness) step(ev Event) {
	h.m.Step(ev)
	h.queue = append(h.queue, h.m.Ready()...)
	for len(h.queue) > 0 {
		e := h.queue[0]
		h.queue = h.queue[1:]
		h.effect(e)
	}
	if h.skipChecks {
		return
	}
	if err := h.m.CheckCaches(); err != nil {
		h.t.Fatal(err)
	}
	if got, want := h.m.inUse("app", h.now), h.m.countInUse("app", h.now).n; got != want {
		h.t.Fatalf("keys in use at %s: %d kept, %d counted", h.now.Format(time.RFC3339), got, want)
	}
}

func (h *harness) then(ev Event) {
	h.m.Step(ev)
	h.queue = append(h.queue, h.m.Ready()...)
}

func (h *harness) effect(e Effect) {
	switch e := e.(type) {
	case Serve:
		h.served[e.Read] = e.Token
		if e.Warning != nil {
			h.warned[e.Read] = e.Warning
		}
	case Fail:
		h.failed[e.Read] = e.Err
	case Send:
		if e.Cleared {
			h.answer(e.Req, e.Key)
		} else {
			h.pendingSends[e.Req] = e.Key
		}
	case AttemptVerdict:
		k, ok := h.pendingSends[e.Req]
		if !ok {
			return
		}
		delete(h.pendingSends, e.Req)
		if e.Go {
			// As the plugin does: the attempt leaves now (the write it waited for took a
			// while since the core decided it).
			h.then(AttemptSending{Now: h.now, Req: e.Req})
			h.answer(e.Req, k)
		} else {
			h.then(Answer{Now: h.now, Req: e.Req, Err: e.Err, NotSent: true})
		}
	case Load:
		ev := Loaded{Now: h.now, Key: e.Key}
		if t, ok := h.store[e.Key.StorageKey()]; ok {
			ev.Entry = &t
		}
		h.then(ev)
	case Store:
		h.store[e.Entry.Key.StorageKey()] = e.Entry
		h.then(Written{Now: h.now, Write: e.Write})
	case Delete:
		delete(h.store, e.StorageKey)
		h.then(Written{Now: h.now, Write: e.Write})
	case LoadCounts:
		ev := CountsLoaded{Now: h.now, ClientID: e.ClientID}
		if h.counts != nil {
			c := cloneCounts(*h.counts)
			ev.Counts = &c
		}
		h.then(ev)
	case StoreCounts:
		if h.holdCounts {
			h.held = append(h.held, e)
			return
		}
		c := cloneCounts(e.Counts)
		h.counts = &c
		h.countsW++
		h.then(CountsWritten{Now: h.now, Write: e.Write})
	case Sweep:
		if h.holdSweep {
			h.sweepsHeld++
			return
		}
		var entries []SweptEntry
		for sk, t := range h.store {
			t := t
			if prev, ok := h.swept[sk]; ok && prev == t && h.now.Before(t.KnownUntil()) {
				entries = append(entries, SweptEntry{StorageKey: sk, KnownUntil: t.KnownUntil(), IssuedAt: IssuedAt(&t)})
				continue
			}
			h.swept[sk] = t
			entries = append(entries, SweptEntry{StorageKey: sk, Token: &t})
		}
		h.then(Swept{Now: h.now, Entries: entries, Done: true})
	case Probe:
		h.probes = append(h.probes, e)
	case DropDone:
		h.dropsDone[e.Drop] = e
	case VerifyDone:
		h.verified[e.Verify] = e
	case Retire, TickDone, Log, Metric:
	default:
		h.t.Fatalf("unexpected effect %T", e)
	}
}

func cloneCounts(c Counts) Counts {
	out := Counts{Minutes: map[int64]int{}, Keys: map[int64]int{}, Reserved: map[int64]int{}}
	for k, v := range c.Minutes {
		out.Minutes[k] = v
	}
	for k, v := range c.Keys {
		out.Keys[k] = v
	}
	for k, v := range c.Reserved {
		out.Reserved[k] = v
	}
	return out
}

func (h *harness) answer(req ReqID, k Key) {
	h.sent = append(h.sent, k)
	if h.fail != nil {
		h.then(Answer{Now: h.now, Req: req, Err: fmt.Errorf("naver answered HTTP %d", h.fail.Status), Outcome: *h.fail})
		return
	}
	h.seq++
	access := fmt.Sprintf("tok%d-%s", h.seq, k.AccountID)
	life := h.life
	if life == 0 {
		life = 3 * time.Hour
	}
	h.then(Answer{Now: h.now, Req: req, Token: &Issued{AccessToken: access, TokenType: "Bearer", ExpiresAt: h.now.Add(life), LatestExpiry: h.now.Add(life)}})
}

// read reads account's token through the many-seller role, all effects done.
func (h *harness) read(account string) (*Token, error) {
	h.ids++
	id := ReadID(h.ids)
	h.step(Read{Now: h.now, ID: id, Key: Key{ClientID: "app", Type: TypeSeller, AccountID: account}, Role: "sellers", NewAccountsPerHour: 1000})
	if tok, ok := h.served[id]; ok {
		return tok, nil
	}
	if err, ok := h.failed[id]; ok {
		return nil, err
	}
	h.t.Fatalf("read of %s got no answer", account)
	return nil, nil
}

// release lets the held writes of the counts land.
func (h *harness) release() {
	held := h.held
	h.held = nil
	for _, e := range held {
		c := cloneCounts(e.Counts)
		h.counts = &c
		h.countsW++
		h.step(CountsWritten{Now: h.now, Write: e.Write})
	}
}

// readAsync starts a read of account and leaves what follows queued (see drain).
func (h *harness) readAsync(account string) ReadID {
	h.ids++
	id := ReadID(h.ids)
	h.then(Read{Now: h.now, ID: id, Key: Key{ClientID: "app", Type: TypeSeller, AccountID: account}, Role: "sellers", NewAccountsPerHour: 1000})
	return id
}

func (h *harness) drain() {
	for len(h.queue) > 0 {
		e := h.queue[0]
		h.queue = h.queue[1:]
		h.effect(e)
	}
}

func (h *harness) tick() {
	h.step(Tick{Now: h.now})
	h.step(TickEnd{Now: h.now})
}

// stepFailingWrites steps ev with every storage write and delete failing; it returns how
// many writes and deletes were tried.
func (h *harness) stepFailingWrites(ev Event) (tries int) {
	h.m.Step(ev)
	h.queue = append(h.queue, h.m.Ready()...)
	for len(h.queue) > 0 {
		e := h.queue[0]
		h.queue = h.queue[1:]
		switch e := e.(type) {
		case Store:
			tries++
			h.then(Written{Now: h.now, Write: e.Write, Err: errors.New("storage is read-only")})
		case Delete:
			tries++
			h.then(Written{Now: h.now, Write: e.Write, Err: errors.New("storage is read-only")})
		default:
			h.effect(e)
		}
	}
	return tries
}

// dropWithFailedLoad drops k (not in memory) with its load failing: k comes into memory
// from the sweep's summary, with no fact.
func (h *harness) dropWithFailedLoad(k Key, id DropID) {
	h.m.Step(Drop{Now: h.now, ID: id, Key: k})
	for _, e := range h.m.Ready() {
		if l, ok := e.(Load); ok {
			h.step(Loaded{Now: h.now, Key: l.Key, Err: errors.New("storage read failed")})
			continue
		}
		h.effect(e)
	}
	h.drain()
}

// Another node writes a newer token into the entry of a key that is in memory only from
// the sweep's summary (its load failed); the sweep decodes the new entry while the key is in
// memory; the key is then forgotten. The summary it leaves must not be the old one.

func (h *harness) tickHoldingSends() []Send {
	var held []Send
	h.m.Step(Tick{Now: h.now})
	h.queue = append(h.queue, h.m.Ready()...)
	for len(h.queue) > 0 {
		e := h.queue[0]
		h.queue = h.queue[1:]
		if s, ok := e.(Send); ok {
			held = append(held, s)
			continue
		}
		h.effect(e)
	}
	h.step(TickEnd{Now: h.now})
	return held
}

// A renewal answered with an unservable token after the config changed meanwhile
// (deleted, or new credentials): the caches agree with fresh counts, and the key counts
// (or not) as a fresh count says.
