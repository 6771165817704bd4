// Package modelcheck explores the decision core (internal/core) exhaustively: a small world
// (one application, a few keys, a single-account role and a many-seller role, storage and
// Naver as models) is driven through every sequence of events up to a depth, and the
// README's promises are checked after every step. The same world runs the core's
// data-driven scripts (testdata/*.txt): a named event per line, and what came of it.
package modelcheck

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// Origin is when every world starts.
var Origin = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

const clientID = "app"

// Params shape a world.
type Params struct {
	Name               string
	PerHour            int  // max_token_requests_per_hour
	AppPerHour         int  // max_application_requests_per_hour (0: automatic)
	MaxRetries         int  // max_retries
	Ahead              bool // background_refresh
	NewAccountsPerHour int  // the many-seller role's max_new_accounts_per_hour
	// Long adds the clock's jumps of a day (for what is forgotten after one).
	Long bool
	// Events are the kinds of events that may happen ("read a", "drop", "role", "config",
	// "restart", "kill", "tick", "advance"); Outcomes, how Naver may answer (ok, 503, 429,
	// timeout) and whether storage may fail ("storage-fail"). Nil: everything.
	Events   []string
	Outcomes []string
	// Depth is how many events deep make check-model explores the world; TestDepth, how
	// deep make test does.
	Depth, TestDepth int
}

// allows reports whether the world's alphabet has event kind (or outcome) kind.
func (p Params) allows(kind string) bool { return p.Events == nil || contains(p.Events, kind) }

func (p Params) answers(outcome string) bool {
	return p.Outcomes == nil || contains(p.Outcomes, outcome)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// DefaultParams is the whole alphabet: every event and outcome.
var DefaultParams = Params{Name: "everything", PerHour: 4, Ahead: true, NewAccountsPerHour: 1, Depth: 8, TestDepth: 4}

// Worlds are the worlds make check-model explores: the whole alphabet, and alphabets of
// one concern each, small enough to explore deeper.
var Worlds = []Params{
	DefaultParams,
	{Name: "reads", PerHour: 4, Ahead: true, NewAccountsPerHour: 1, MaxRetries: 1, Depth: 10, TestDepth: 6,
		Events: []string{"read a", "read b", "tick", "advance"}, Outcomes: []string{"ok", "503", "429", "timeout", "storage-fail"}},
	{Name: "operators", PerHour: 4, Ahead: true, NewAccountsPerHour: 1, Depth: 8, TestDepth: 5,
		Events: []string{"read a", "read b", "drop", "role", "config delete", "config c1", "restart", "kill", "tick", "advance"}, Outcomes: []string{"ok", "503", "storage-fail"}},
	{Name: "accounts", PerHour: 4, Ahead: true, NewAccountsPerHour: 1, Depth: 10, TestDepth: 6,
		Events: []string{"read b", "read x", "role many", "restart", "tick", "advance"}, Outcomes: []string{"ok", "503"}},
	{Name: "credentials", PerHour: 4, Ahead: true, NewAccountsPerHour: 1, Depth: 8, TestDepth: 5,
		Events: []string{"read a", "config delete", "config c1", "config c2", "config bad", "restart", "tick", "advance"}, Outcomes: []string{"ok", "503", "timeout", "storage-fail"}},
	{Name: "counts", PerHour: 12, AppPerHour: 800, Ahead: true, NewAccountsPerHour: 1, Depth: 9, TestDepth: 6,
		Events: []string{"read a", "read b", "restart", "advance"}, Outcomes: []string{"ok", "storage-fail"}},
	// What the automatic budget counts across restarts: tokens that end early (a strange
	// answer, a drop) while their keys still count for 3 hours.
	{Name: "in use", PerHour: 4, Ahead: true, NewAccountsPerHour: 1, Depth: 9, TestDepth: 6,
		Events: []string{"read a", "read b", "drop", "role", "restart", "tick", "advance"}, Outcomes: []string{"ok", "short", "storage-fail"}},
}

// The world's keys: a seller read through the single-account role "one", a seller read
// through the many-seller role "many", and an account Naver refuses (not authorised), read
// through "many".
var (
	keyA = core.Key{ClientID: clientID, Type: core.TypeSeller, AccountID: "a"}
	keyB = core.Key{ClientID: clientID, Type: core.TypeSeller, AccountID: "b"}
	keyX = core.Key{ClientID: clientID, Type: core.TypeSeller, AccountID: "x"}
)

// The world's configs: two secrets of the application (the second re-issued at Naver) and a
// base URL that answers nothing (an operator's typo, later fixed).
var configs = map[string]core.Config{
	"c1":  {ClientID: clientID, Credentials: "c1", Endpoint: "e1"},
	"c2":  {ClientID: clientID, Credentials: "c2", Endpoint: "e1"},
	"bad": {ClientID: clientID, Credentials: "bad", Endpoint: "e-unreachable"},
}

// World is the small world: the core, and models of storage and Naver around it.
type World struct {
	P   Params
	M   *core.Machine
	Now time.Time

	// Storage, as the plugin's storage would hold it.
	cfgName string // "" when deleted
	roles   map[string]*core.Role
	store   map[string]core.Token
	counts  *core.Counts
	// swept is what the plugin remembers of each entry its sweep decoded (by checksum): an
	// entry unchanged since is handed to the core undecoded until its time has passed. A
	// restart forgets it.
	swept map[string]sweptMemo
	// Naver.
	naver naverModel
	// Effects of the core still under way.
	pending []*pend
	// Operations waiting for the core.
	reads   map[core.ReadID]*readRec
	drops   map[core.DropID]string
	writing *configWrite // a config write waiting for its verification
	ticking bool
	nextID  uint64

	Trace      []string
	Violations []string
	check      checkState
	// quiet: no trace (the model checker explores millions of states).
	quiet bool
}

type pend struct {
	effect core.Effect
	// A request: waiting for the verdict on its first attempt (cleared once it may go),
	// the key it is of, its config's endpoint, when it was made, attempts sent.
	cleared  bool
	endpoint string
	creds    string
	sentAt   time.Time
	attempts int
	lastErr  *naverError
	// checking: the client is asking whether a retry may follow; checkOK is the answer.
	checking, checkOK bool
}

type readRec struct {
	key  core.Key
	role string
	at   time.Time
}

type configWrite struct {
	name   string
	verify core.VerifyID
}

// NewWorld starts a world: config c1, both roles, nothing cached.
func NewWorld(p Params) *World {
	w := &World{P: p, Now: Origin, roles: map[string]*core.Role{}, store: map[string]core.Token{},
		reads: map[core.ReadID]*readRec{}, drops: map[core.DropID]string{}}
	w.naver.init()
	w.check.init()
	w.cfgName = "c1"
	w.roles["one"] = &core.Role{Type: core.TypeSeller, AccountID: "a"}
	w.roles["many"] = &core.Role{Type: core.TypeSeller, Allowed: []string{"*"}, NewAccountsPerHour: p.NewAccountsPerHour}
	w.start()
	return w
}

// config is the config in force with the world's parameters.
func (w *World) config(name string) *core.Config {
	c := configs[name]
	c.PerHour, c.AppPerHour, c.MaxRetries, c.Ahead = w.P.PerHour, w.P.AppPerHour, w.P.MaxRetries, w.P.Ahead
	c.Timeout = 10 * time.Second
	return &c
}

// start is a plugin start: a new core told the stored config and every stored role, as the
// plugin tells it.
func (w *World) start() {
	w.M = core.New(core.Options{RenewAtWindowStart: true})
	w.swept = nil
	if w.cfgName != "" {
		w.step(core.ConfigSet{Now: w.Now, Config: w.config(w.cfgName)})
	}
	roles := map[string]core.Role{}
	for n, r := range w.roles {
		roles[n] = *r
	}
	w.step(core.RolesLoaded{Now: w.Now, Roles: roles})
}

func (w *World) id() uint64 {
	w.nextID++
	return w.nextID
}

func (w *World) logf(format string, args ...any) {
	if w.quiet {
		return
	}
	w.Trace = append(w.Trace, fmt.Sprintf("%s %s", offset(w.Now), fmt.Sprintf(format, args...)))
}

func offset(t time.Time) string {
	d := t.Sub(Origin)
	return fmt.Sprintf("+%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

func (w *World) violate(inv, format string, args ...any) {
	w.Violations = append(w.Violations, fmt.Sprintf("%s %s: %s", offset(w.Now), inv, fmt.Sprintf(format, args...)))
}

// step hands the core an event and carries out what it decides, as the plugin would.
func (w *World) step(ev core.Event) {
	w.M.Step(ev)
	for w.M.HasReady() {
		for _, e := range w.M.Ready() {
			w.effect(e)
		}
	}
	w.check.after(w)
}

func (w *World) effect(e core.Effect) {
	switch e := e.(type) {
	case core.Serve:
		w.served(e)
	case core.Fail:
		w.failed(e)
	case core.Send:
		p := &pend{effect: e, cleared: e.Cleared, creds: e.Credentials, endpoint: configs[e.Credentials].Endpoint, sentAt: w.Now}
		w.pending = append(w.pending, p)
		w.check.admitted[w.Now.Unix()/60]++
	case core.AttemptVerdict:
		w.verdict(e)
	case core.Load, core.Store, core.Delete, core.LoadCounts, core.StoreCounts, core.Probe:
		w.pending = append(w.pending, &pend{effect: e})
	case core.DropDone:
		w.logf("drop %s: outcome %d err %v", w.drops[e.Drop], e.Outcome, e.Err)
		if e.Outcome == core.Dropped && e.Err == nil {
			for _, t := range w.naver.all {
				if t.key == keyA && t.dead {
					w.check.droppedDead[t.access] = true
				}
			}
		}
		delete(w.drops, e.Drop)
	case core.VerifyDone:
		w.verified(e)
	case core.Retire:
		for sk, t := range w.store {
			if t.Retired == "" && t.AccessToken != "" && t.Credentials != e.Keep {
				// The README: changing the credentials stops serving every cached token.
				w.check.excused[t.AccessToken] = true
				t.AccessToken, t.Retired = "", core.RetiredCredentials
				w.store[sk] = t
			}
		}
	case core.Sweep:
		w.sweep()
	case core.TickDone:
		w.ticking = false
	case core.Log, core.Metric:
	default:
		panic(fmt.Sprintf("modelcheck: unknown effect %T", e))
	}
}

// sweptMemo is what the plugin's sweep keeps of an entry it decoded (token_sweep.go).
type sweptMemo struct {
	entry                core.Token
	knownUntil, issuedAt time.Time
}

// sweep reads every stored entry for the core, as the plugin's sweep does (in one part):
// an entry unchanged since the sweep last decoded it, whose time has not passed, is handed
// over undecoded, with only its time and when its token was issued.
func (w *World) sweep() {
	keys := make([]string, 0, len(w.store))
	for sk := range w.store {
		keys = append(keys, sk)
	}
	sort.Strings(keys)
	entries := make([]core.SweptEntry, 0, len(keys))
	swept := make(map[string]sweptMemo, len(keys))
	for _, sk := range keys {
		t := w.store[sk]
		if prev, ok := w.swept[sk]; ok && prev.entry == t && w.Now.Before(prev.knownUntil) {
			swept[sk] = prev
			entries = append(entries, core.SweptEntry{StorageKey: sk, KnownUntil: prev.knownUntil, IssuedAt: prev.issuedAt})
			continue
		}
		swept[sk] = sweptMemo{entry: t, knownUntil: t.KnownUntil(), issuedAt: core.IssuedAt(&t)}
		entries = append(entries, core.SweptEntry{StorageKey: sk, Token: &t})
	}
	w.swept = swept
	w.M.Step(core.Swept{Now: w.Now, Entries: entries, Done: true})
}

func (w *World) served(e core.Serve) {
	r := w.reads[e.Read]
	delete(w.reads, e.Read)
	w.logf("read %s: served %s (expires %s, fetched %t, warning %t)", r.key.AccountID, e.Token.AccessToken, offset(e.Token.ExpiresAt), e.Fetched, e.Warning != nil)
	w.check.served(w, r, e)
}

func (w *World) failed(e core.Fail) {
	r := w.reads[e.Read]
	delete(w.reads, e.Read)
	if r == nil {
		return
	}
	w.logf("read %s: failed: %s", r.key.AccountID, shorten(e.Err))
	w.check.failedRead(w, r, e.Err)
}

func shorten(err error) string {
	s := err.Error()
	if len(s) > 140 {
		s = s[:140] + "..."
	}
	return s
}

func (w *World) verdict(e core.AttemptVerdict) {
	for _, p := range w.pending {
		if s, ok := p.effect.(core.Send); ok && s.Req == e.Req {
			if p.checking {
				p.checkOK = e.Go // whether a retry may follow: not yet its go
				return
			}
			if e.Go {
				p.cleared = true
				return
			}
			// The attempt is not sent: the request ends with why (the last answer's error,
			// for a retry).
			w.removePending(p)
			ans := core.Answer{Now: w.Now, Req: e.Req, Err: e.Err, NotSent: p.attempts == 0}
			if p.lastErr != nil {
				ans.Err, ans.Outcome = p.lastErr, p.lastErr.outcome
			}
			w.step(ans)
			return
		}
	}
}

func (w *World) removePending(p *pend) {
	for i, q := range w.pending {
		if q == p {
			w.pending = append(w.pending[:i:i], w.pending[i+1:]...)
			return
		}
	}
}

func (w *World) verified(e core.VerifyDone) {
	cw := w.writing
	if cw == nil || cw.verify != e.Verify {
		return
	}
	w.writing = nil
	if e.Err != nil {
		w.logf("config %s: not stored: %s", cw.name, shorten(e.Err))
		return
	}
	w.logf("config %s: stored (fresh %t)", cw.name, e.Fresh)
	retire := secretOf(w.cfgName) != secretOf(cw.name)
	w.cfgName = cw.name
	w.step(core.ConfigSet{Now: w.Now, Config: w.config(cw.name), Written: true, RetireOthers: retire})
	if e.Token != nil {
		w.step(core.Seed{Now: w.Now, Token: *e.Token})
	}
}

// secretOf is the secret of config name: "bad" has c1's (only its base URL is mistyped).
func secretOf(name string) string {
	if name == "bad" {
		return "c1"
	}
	return name
}

// naverError is an answer of Naver's that is not a token.
type naverError struct {
	outcome  core.Outcome
	text     string
	endpoint string // where the request went
}

func (e *naverError) Error() string { return e.text }

var errStorage = errors.New("storage failed")

// keysOf names a key by its account, as choices and traces do.
func keyByName(name string) (core.Key, string, bool) {
	switch name {
	case "a":
		return keyA, "one", true
	case "b":
		return keyB, "many", true
	case "x":
		return keyX, "many", true
	}
	return core.Key{}, "", false
}

func describePending(p *pend) string {
	switch e := p.effect.(type) {
	case core.Send:
		kind := "read"
		if e.Background {
			kind = "renewal"
		}
		if e.Verify != 0 {
			kind = "verify"
		}
		return fmt.Sprintf("request %s (%s, %s)", keyName(e.Key), kind, e.Credentials)
	case core.Load:
		return "load " + keyName(e.Key)
	case core.Store:
		return fmt.Sprintf("store %s", keyName(e.Entry.Key))
	case core.Delete:
		if e.Key != nil {
			return "delete " + e.Key.AccountID
		}
		return "delete " + e.StorageKey
	case core.LoadCounts:
		return "load-counts"
	case core.StoreCounts:
		return "store-counts"
	case core.Probe:
		return "probe " + e.Key.AccountID
	}
	return fmt.Sprint(p.effect)
}

// keyName names a key in traces: its account, or SELF.
func keyName(k core.Key) string {
	if k.Type == core.TypeSelf {
		return "SELF"
	}
	return k.AccountID
}

// Summary describes the world's state in a few lines (for traces and scripts).
func (w *World) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "now %s config %q\n", offset(w.Now), w.cfgName)
	for _, k := range []core.Key{keyA, keyB, keyX} {
		if t := w.M.Cached(k); t != nil {
			fmt.Fprintf(&b, "cached %s %s expires %s\n", k.AccountID, t.AccessToken, offset(t.ExpiresAt))
		}
	}
	for _, k := range []core.Key{keyA, keyB, keyX} {
		if t, ok := w.store[k.StorageKey()]; ok {
			what := "token"
			if t.AccessToken == "" {
				what = "fact"
				if t.Retired != "" {
					what += " (" + t.Retired + ")"
				}
			}
			fmt.Fprintf(&b, "stored %s %s\n", k.AccountID, what)
		}
	}
	if w.cfgName != "" && w.P.AppPerHour == 0 {
		fmt.Fprintf(&b, "keys in use %d\n", w.M.App(w.Now).InUse)
	}
	for i, p := range w.pending {
		fmt.Fprintf(&b, "pending %d: %s\n", i, describePending(p))
	}
	return b.String()
}
