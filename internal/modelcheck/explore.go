package modelcheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// Result is what an exploration found.
type Result struct {
	Params      Params
	Depth       int
	States      int // distinct states reached
	Transitions int // events tried
	Truncated   bool
	Findings    []Finding
	// ByInvariant counts the violations found, by invariant.
	ByInvariant map[string]int
	Elapsed     time.Duration
}

// Finding is a violation with the events that led to it.
type Finding struct {
	Violation string
	Path      []string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s\n  after: %s", f.Violation, strings.Join(f.Path, " → "))
}

// Explore tries every sequence of up to depth events from a new world of p, each state once
// (a state reached again with as many or fewer events left is not explored again), checking
// every invariant after every event. It stops after maxStates states (0: no limit) and keeps
// the first maxFindings findings. The first event's branches are explored by workers (one
// per CPU) sharing what they have seen.
func Explore(p Params, depth, maxStates, maxFindings int) Result {
	start := time.Now()
	root := NewWorld(p)
	root.quiet = true
	x := &explorer{p: p, maxStates: maxStates, maxFindings: maxFindings,
		seen: map[uint64]int{root.digest(): depth}, res: Result{Params: p, Depth: depth, ByInvariant: map[string]int{}}}
	choices := root.Choices()
	work := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				x.branch(root, choices[i], depth, []string{})
			}
		}()
	}
	for i := range choices {
		work <- i
	}
	close(work)
	wg.Wait()
	x.res.States = len(x.seen)
	x.res.Elapsed = time.Since(start)
	return x.res
}

type explorer struct {
	p           Params
	maxStates   int
	maxFindings int
	mu          sync.Mutex
	seen        map[uint64]int // digest → the most events left when it was explored
	res         Result
}

// branch carries out c from w (a copy of it; w itself when reuse) and explores on from
// there with left-1 events left.
func (x *explorer) branch(w *World, c Choice, left int, path []string) {
	next := w.clone()
	c.do(next)
	path = append(path, c.Name)
	x.mu.Lock()
	x.res.Transitions++
	if len(next.Violations) > 0 {
		for _, v := range next.Violations {
			x.res.ByInvariant[strings.Fields(v)[1]]++
			if len(x.res.Findings) < x.maxFindings {
				x.res.Findings = append(x.res.Findings, Finding{Violation: v, Path: append([]string(nil), path...)})
			}
		}
		x.mu.Unlock()
		return
	}
	if left == 1 || x.res.Truncated {
		// A leaf: nothing is explored from it, so it need not be known again.
		x.mu.Unlock()
		return
	}
	x.mu.Unlock()
	h := next.digest()
	x.mu.Lock()
	if l, ok := x.seen[h]; ok && l >= left-1 {
		x.mu.Unlock()
		return
	}
	x.seen[h] = left - 1
	if x.maxStates > 0 && len(x.seen) > x.maxStates {
		x.res.Truncated = true
	}
	x.mu.Unlock()
	for _, c := range next.Choices() {
		x.branch(next, c, left-1, path)
	}
}

// Replay runs the named events from a new world of p, stopping at the first violation or at
// an event that cannot happen; it returns the world (its Trace says what happened).
func Replay(p Params, events []string) (*World, error) {
	w := NewWorld(p)
	for _, name := range events {
		if !w.Do(name) {
			return w, fmt.Errorf("%q cannot happen now; what can: %s", name, w.ChoiceNames())
		}
		if len(w.Violations) > 0 {
			return w, nil
		}
	}
	return w, nil
}

// clone is a deep copy of the world (the core included).
func (w *World) clone() *World {
	c := *w
	c.M = w.M.Clone()
	c.roles = make(map[string]*core.Role, len(w.roles))
	for k, v := range w.roles {
		c.roles[k] = v
	}
	c.swept = cloneMap(w.swept)
	c.store = make(map[string]core.Token, len(w.store))
	for k, v := range w.store {
		c.store[k] = v
	}
	if w.counts != nil {
		cc := copyCounts(*w.counts)
		c.counts = &cc
	}
	c.naver = w.naver.clone()
	c.pending = make([]*pend, len(w.pending))
	for i, p := range w.pending {
		cp := *p
		c.pending[i] = &cp
	}
	c.reads = make(map[core.ReadID]*readRec, len(w.reads))
	for k, v := range w.reads {
		cp := *v
		c.reads[k] = &cp
	}
	c.drops = make(map[core.DropID]string, len(w.drops))
	for k, v := range w.drops {
		c.drops[k] = v
	}
	if w.writing != nil {
		cw := *w.writing
		c.writing = &cw
	}
	if !w.quiet {
		c.Trace = append([]string(nil), w.Trace...)
	}
	c.Violations = nil
	c.check = w.check.clone()
	return &c
}

func (n naverModel) clone() naverModel {
	c := n
	c.all = make(map[string]*ntok, len(n.all))
	for k, v := range n.all {
		cp := *v
		c.all[k] = &cp
	}
	c.cur = make(map[core.Key]*ntok, len(n.cur))
	for k, v := range n.cur {
		c.cur[k] = c.all[v.access]
	}
	c.sent = append([]attempt(nil), n.sent...)
	return c
}

func (c checkState) clone() checkState {
	out := c
	out.delivered = cloneMap(c.delivered)
	out.excused = cloneMap(c.excused)
	out.droppedDead = cloneMap(c.droppedDead)
	out.retryAfter = cloneMap(c.retryAfter)
	out.lastFailure = cloneMap(c.lastFailure)
	out.activity = cloneMap(c.activity)
	out.admitted = cloneMap(c.admitted)
	out.refusedNew = append([]time.Time(nil), c.refusedNew...)
	out.issuedTo = make(map[core.Key][]issue, len(c.issuedTo))
	for k, v := range c.issuedTo {
		out.issuedTo[k] = append([]issue(nil), v...)
	}
	return out
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// digest is a hash of everything in the world that decides what happens next and what the
// invariants say of it.
func (w *World) digest() uint64 {
	var b bytes.Buffer
	u := func(v uint64) { binary.Write(&b, binary.LittleEndian, v) }
	s := func(v string) { u(uint64(len(v))); b.WriteString(v) }
	t := func(v time.Time) {
		if v.IsZero() {
			u(0)
		} else {
			u(uint64(v.UnixNano()))
		}
	}
	u(w.M.Digest())
	t(w.Now)
	s(w.cfgName)
	for _, name := range sortedKeys(w.roles) {
		s(name)
	}
	for _, sk := range sortedKeys(w.store) {
		e := w.store[sk]
		s(sk)
		s(fmt.Sprintf("%+v", e))
	}
	if w.counts != nil {
		s(fmt.Sprint(w.counts.Minutes, w.counts.Keys, w.counts.Reserved))
	}
	for _, sk := range sortedKeys(w.swept) {
		e := w.swept[sk]
		s(sk)
		s(fmt.Sprintf("%+v", e.entry))
		t(e.knownUntil)
	}
	s(w.naver.secret)
	for _, access := range sortedKeys(w.naver.all) {
		n := w.naver.all[access]
		s(access)
		t(n.expires)
		u(boolBit(n.dead))
		u(boolBit(w.naver.cur[n.key] == n))
	}
	for _, a := range w.naver.sent {
		if w.Now.Sub(a.at) < 25*time.Hour {
			s(a.key.AccountID + a.creds)
			t(a.at)
		}
	}
	for _, p := range w.pending {
		s(describePending(p))
		u(boolBit(p.cleared))
		u(uint64(p.attempts))
		t(p.sentAt)
	}
	for _, id := range sortedKeys(w.reads) {
		r := w.reads[id]
		s(r.key.AccountID)
		t(r.at)
	}
	for _, id := range sortedKeys(w.drops) {
		s(w.drops[id])
	}
	if w.writing != nil {
		s(w.writing.name)
	}
	s(fmt.Sprint(sortedKeys(w.check.delivered), sortedKeys(w.check.excused), sortedKeys(w.check.droppedDead)))
	s(fmt.Sprint(w.check.retryAfter, w.check.lastFailure, w.check.admitted))
	t(w.check.refusedSince)
	for _, k := range []core.Key{keyA, keyB, keyX} {
		for _, is := range w.check.issuedTo[k] {
			if w.Now.Sub(is.at) < core.TokenLifetime {
				s(k.AccountID + is.access)
				t(is.at)
			}
		}
	}
	for _, at := range w.check.refusedNew {
		t(at)
	}
	h := fnv.New64a()
	h.Write(b.Bytes())
	return h.Sum64()
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[K interface{ ~string | ~uint64 }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
