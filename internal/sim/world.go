package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	navercommerce "github.com/navercommerce/vault-plugin-secrets-navercommerce"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// Naver's and the plugin's numbers the checks are stated in (README, "How tokens are
// cached and renewed"); they are repeated here, not imported, because they are promises.
const (
	minServableLife  = 10 * time.Second
	refreshWindow    = 30 * time.Minute
	failureBackoff   = 5 * time.Second
	periodicInterval = time.Minute
	// recoveryBound: after every fault has ended, a read of a healthy role succeeds within
	// this long (the hourly budget refills in an hour; read back-off is at most 5 minutes).
	recoveryBound = 65 * time.Minute
	// sweepBound: a stored token is gone this long after it expired (hourly sweep).
	sweepBound = time.Hour + 2*periodicInterval
	baseURL    = "http://127.0.0.1:9/external"
	mount      = "navercommerce/"
)

var epoch = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// world is one simulated run: a clock, the emulator, and the applications (mounts).
type world struct {
	seed  uint64
	p     Params
	clock *navercommercetest.Clock
	emu   *navercommercetest.Emulator
	skew  atomic.Int64 // Naver's clock ahead of ours, nanoseconds
	apps  []*app
	logs  lockedBuffer
	ctx   context.Context

	// netMu makes requests reach Naver one at a time, in a deterministic order where it can.
	netMu sync.Mutex

	mu         sync.Mutex
	faults     []activeFault
	burst      []string // answers of the next token requests
	gate       *gate
	violations []Violation
	seen       map[string]bool // invariant+detail already reported
	stats      Stats
	// secrets are strings that must never appear in a response, log or metric.
	secrets   map[string]bool
	fragments fragmentIndex // every signature sent
	issued    map[string]*issuedToken
	// killedUndropped are the tokens killed at Naver that no drop of their key followed yet.
	killedUndropped []*issuedToken
	// latest is the newest token Naver issued per app and key: what Naver holds now.
	latest map[string]string
	// lastBurst is when the last queued fault answer was used.
	lastBurst time.Time
	// dropsDone counts the drops that succeeded, in the order they answered.
	dropsDone uint64
	// storageFaults counts injected storage failures, so an operation that met one may fail.
	storageFaults atomic.Int64
	hourly        map[int64]int // application requests per (app, hour)
	// lostAtRestart holds, per app and key, the token Naver held when the app restarted
	// while the key's storage entry was out of date (its last put had failed): the new
	// backend cannot know that token, so its next request may be needless (seed 357).
	lostAtRestart map[string]string
	// excusedNaver holds emulator findings excused by lostAtRestart, so the penalty they
	// earn is excused too.
	excusedNaver []string
	minutely     map[int64]int // requests of every application per minute since the epoch
}

// issuedToken is a token Naver issued, as the simulator saw it pass.
type issuedToken struct {
	app, gen int
	key      string
	expires  time.Time // on the simulator's clock
	killed   bool      // killed at Naver (a seller re-authorised)
	// droppedBy numbers (world.dropsDone) the first drop of the key that succeeded after
	// the token was killed, 0 before: from then on the plugin has asked Naver about its
	// token. A drop that failed (Naver did not answer the probe, storage failed) told the
	// plugin nothing: it keeps serving the token, as the drop's error says ("nothing was
	// dropped"). A read that started before the drop answered may still be served it.
	droppedBy uint64
}

type activeFault struct {
	kind  string
	app   int
	until time.Time
	a     Action
}

// app is one mount: its own application at Naver, storage and backend.
type app struct {
	w        *world
	idx      int
	clientID string
	secret   string // at Naver
	// cfgSecret is the secret in the plugin's config ("" when unconfigured).
	cfgSecret        string
	configured       bool
	gen              int // secret rotations
	perHour          int
	ahead            bool
	retries          int
	timeout          time.Duration
	storage          *logical.InmemStorage
	view             *storageView
	b                navercommerce.Backend
	roles            map[string]*roleModel
	keys             map[string]*keyModel
	lastRoleChange   time.Time
	lastStorageFault time.Time
	lastConfigChange time.Time
	lastRestart      time.Time
	penaltyLogged    bool
	// unstored maps the storage path of a token entry whose last put failed (an injected
	// fault) to its key: this backend holds in memory what storage lacks. Under world.mu.
	unstored map[string]string
	// verifying is set while a config write is being handled (under world.mu): a token
	// request then is the write's verification of credentials not yet stored.
	verifying bool
	// history holds the app's last operator actions, for violation reports.
	history []string
	// storedExpiries are the stored token entries checkStorage read last, by storage key.
	storedExpiries map[string]storedExpiry
	// appBudgetRefusals sums the application budget's refusals of the backends replaced so
	// far (a restart starts the metric at 0).
	appBudgetRefusals float64
	// viewTurn is where the operator view's round of the many-seller role's sellers is.
	viewTurn int
}

type roleModel struct {
	exists  bool
	damaged bool
	typ     string
	account string
	ttl     time.Duration
	noLease bool
	// uncertain: two writes raced; the model cannot say which won.
	uncertain bool
}

func (r *roleModel) key() string { return r.typ + "|" + r.account }

// keyModel is what the simulator saw of one key's requests to Naver.
type keyModel struct {
	attempts  []time.Time // since the last restart or credential change, for the budget
	inFlight  int
	lastTS    string    // timestamp of the last fetch (retries reuse it)
	lastAt    time.Time // when its last attempt ended
	lastOK    bool      // its last attempt gave a servable token
	lastError string
	resetAt   time.Time // restart, credential change or drop: back-off and budget start over
	everFetch bool
	lastRead  time.Time // when a read through a role last started
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // what was written since the secrets check last read it
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// unscanned returns what was written since the last call.
func (b *lockedBuffer) unscanned() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Only the new bytes are copied: a String of the whole buffer at every check was a
	// sixth of a long run's cost.
	s := b.buf.String()
	// Reset keeps the buffer's memory: it grows to the most written between two checks,
	// not to the whole run's log (its regrowth was a twentieth of a long run's cost).
	b.buf.Reset()
	return s
}

func newWorld(seed uint64, p Params) *world {
	w := &world{
		seed:      seed,
		p:         p,
		clock:     navercommercetest.NewClock(epoch),
		ctx:       context.Background(),
		seen:      map[string]bool{},
		secrets:   map[string]bool{},
		fragments: fragmentIndex{},
		issued:    map[string]*issuedToken{},
		latest:    map[string]string{},
		hourly:    map[int64]int{},

		lostAtRestart: map[string]string{},
		minutely:      map[int64]int{},
	}
	w.stats.Faults = map[string]int{}
	w.stats.FailedReads = map[string]int{}
	var apps []navercommercetest.Application
	for i := 0; i < p.Apps; i++ {
		a := &app{
			w: w, idx: i,
			clientID: fmt.Sprintf("simApp%dClientXXXXXXXX", i),
			secret:   newSecret(seed, i, 0),
			storage:  &logical.InmemStorage{},
			roles:    map[string]*roleModel{},
			keys:     map[string]*keyModel{},
			unstored: map[string]string{},
			perHour:  12, ahead: true, retries: 1, timeout: 10 * time.Second, // perHour: the plugin's default
		}
		w.secrets[a.secret] = true
		w.secrets[a.secret[7:]] = true
		apps = append(apps, navercommercetest.Application{ClientID: a.clientID, ClientSecret: a.secret})
		w.apps = append(w.apps, a)
	}
	// Naver's clock is ahead of ours by up to 4 s on a third of the seeds (Naver refuses
	// timestamps from its future; a clock that steps back is not modelled: the plugin
	// cannot know that Naver's view of a token grew).
	if seed%3 == 0 {
		w.skew.Store(int64(hash(seed) % uint64(4*time.Second)))
	}
	// Naver's docs do not say what expires_in a handed-back token reports: a third of the
	// seeds live with a Naver that reports the full 10800 s.
	emuConfig := navercommercetest.Config{Applications: apps, Now: w.naverNow, ReusedTokenFullLifetime: seed%3 == 1}
	// Naver's per-application limit is not published (the emulator's 60 an hour is ours):
	// an application of many keys gets one above the plugin's automatic budget (30 + 2 per
	// token in use), so the penalty stays a failure of the plugin's budget, not of the model.
	if limit := 3 * p.keysPerApp(); limit > navercommercetest.DefaultPenaltyRequestsPerHour {
		emuConfig.Penalty.RequestsPerHour = limit
	}
	if p.FastSignatures {
		emuConfig.SignatureDigest = fastDigest
	}
	w.emu = navercommercetest.New(emuConfig)
	for _, a := range w.apps {
		a.start()
	}
	return w
}

func (w *world) now() time.Time { return w.clock.Now() }

func (w *world) naverNow() time.Time { return w.clock.Now().Add(time.Duration(w.skew.Load())) }

// advanceTo moves the clock forward to t (never back: requests may have moved it past).
func (w *world) advanceTo(t time.Time) {
	if d := t.Sub(w.now()); d > 0 {
		w.clock.Advance(d)
	}
}

// newSecret derives a client secret from the seed: a cost-04 bcrypt salt.
func newSecret(seed uint64, app, gen int) string {
	const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%d", seed, app, gen)
	x := h.Sum64()
	b := []byte("$2a$04$")
	for i := 0; i < 21; i++ {
		b = append(b, alphabet[x%64])
		x = x*6364136223846793005 + 1442695040888963407
		x ^= x >> 29
	}
	// The last character carries 2 unused bits: pick one whose unused bits are zero, so
	// the secret is in the canonical form Naver issues.
	b = append(b, alphabet[(x%16)*4])
	return string(b)
}

// start makes a new backend over the app's storage: the first start, or a restart.
func (a *app) start() {
	if a.view != nil {
		a.countRefusals()
		a.view.closed.Store(true)
		a.b.Cleanup(a.w.ctx)
		a.w.mu.Lock()
		for _, keyID := range a.unstored {
			id := fmt.Sprint(a.idx) + "|" + keyID
			a.w.lostAtRestart[id] = a.w.latest[id]
		}
		a.unstored = map[string]string{}
		a.w.mu.Unlock()
	}
	a.view = &storageView{a: a, under: a.storage}
	conf := logical.TestBackendConfig()
	conf.StorageView = a.view
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: &a.w.logs, Level: hclog.Debug, Name: fmt.Sprintf("app%d", a.idx)})
	opts := navercommerce.Options{
		Now:       a.w.clock.Now,
		Transport: &transport{a: a},
		// Retry waits carry the client's random jitter; rounded up to whole seconds they
		// are the same on every replay (max_retries ≤ 2 in the mix: waits under 1 s).
		RetryWait: func(d time.Duration) { a.w.clock.Advance((d + time.Second - 1) / time.Second * time.Second) },
	}
	if a.w.p.FastSignatures {
		opts.SignatureDigest = fastDigest
	}
	b, err := navercommerce.New(a.w.ctx, conf, opts)
	if err != nil {
		panic(fmt.Sprintf("sim: starting a backend: %v", err))
	}
	a.b = b
	a.lastRestart = a.w.now()
	for _, k := range a.keys {
		k.reset(a.w.now())
	}
}

// countRefusals adds the current backend's application budget refusals (its metric) to
// appBudgetRefusals; the backend is about to be replaced or the run ends. Only runs with a
// many-seller role count them: reading metrics sweeps storage if no sweep ran yet, which
// would change the schedules of the seeds in the corpus.
func (a *app) countRefusals() {
	if a.w.p.ManySellers == 0 {
		return
	}
	resp, err, _ := a.request(logical.ReadOperation, "metrics", nil)
	if err != nil || resp == nil || resp.IsError() {
		return
	}
	counters, _ := resp.Data["counters"].([]map[string]any)
	for _, c := range counters {
		if c["name"] == "navercommerce_application_budget_refusals_total" {
			v, _ := c["value"].(float64)
			a.appBudgetRefusals += v
		}
	}
}

func (k *keyModel) reset(now time.Time) {
	k.attempts = nil
	k.resetAt = now
	k.lastOK = true
	k.lastError = ""
}

func (a *app) key(id string) *keyModel {
	k := a.keys[id]
	if k == nil {
		k = &keyModel{lastOK: true}
		a.keys[id] = k
	}
	return k
}

// request sends one request to the current backend as Vault's router would, existence
// check included. It reports whether a storage fault was injected meanwhile.
func (a *app) request(op logical.Operation, path string, data map[string]any) (*logical.Response, error, bool) {
	before := a.w.storageFaults.Load()
	b, view := a.b, a.view
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: view, MountPoint: mount}
	var resp *logical.Response
	var err error
	if op == logical.UpdateOperation {
		var checkFound, exists bool
		checkFound, exists, err = b.HandleExistenceCheck(a.w.ctx, req)
		if err == nil && checkFound && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	if err == nil {
		resp, err = b.HandleRequest(a.w.ctx, req)
	}
	return resp, err, a.w.storageFaults.Load() != before
}

// storageView is a backend's view of its app's storage: it fails operations while a
// storage fault is active, stops working when its backend is replaced (a restarted node
// cannot write), and is where concurrent actions are started (gates).
type storageView struct {
	a      *app
	under  logical.Storage
	closed atomic.Bool
	ops    atomic.Uint64
}

var errShutDown = errors.New("sim: storage closed: this backend was shut down")

func (s *storageView) fail(op, key string) error {
	if s.closed.Load() {
		return errShutDown
	}
	w := s.a.w
	n := s.ops.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for _, f := range w.faults {
		if f.kind != faultStorage || f.app != s.a.idx || !now.Before(f.until) || !strings.Contains(f.a.S, op) {
			continue
		}
		if hash(w.seed, uint64(s.a.idx), n)%uint64(f.a.N) == 0 {
			w.stats.Faults["storage-"+op]++
			w.storageFaults.Add(1)
			s.a.lastStorageFault = now
			return fmt.Errorf("sim: injected storage failure on %s %s", op, key)
		}
	}
	return nil
}

func (s *storageView) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.fail("list", prefix); err != nil {
		return nil, err
	}
	return s.under.List(ctx, prefix)
}

func (s *storageView) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if err := s.fail("get", key); err != nil {
		return nil, err
	}
	e, err := s.under.Get(ctx, key)
	s.a.w.atGate("get:" + key)
	return e, err
}

func (s *storageView) Put(ctx context.Context, e *logical.StorageEntry) error {
	if err := s.fail("put", e.Key); err != nil {
		if !errors.Is(err, errShutDown) {
			s.noteTokenEntry(e, false)
		}
		return err
	}
	s.a.w.atGate("put:" + e.Key)
	if s.closed.Load() {
		return errShutDown
	}
	err := s.under.Put(ctx, e)
	if err == nil {
		s.noteTokenEntry(e, true)
	}
	return err
}

// noteTokenEntry follows whether storage holds what the backend last put in a token
// entry (whose value names its key).
func (s *storageView) noteTokenEntry(e *logical.StorageEntry, stored bool) {
	if !strings.HasPrefix(e.Key, "tokens/") {
		return
	}
	w := s.a.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if stored {
		delete(s.a.unstored, e.Key)
		return
	}
	var v struct {
		Key struct {
			Type      string `json:"type"`
			AccountID string `json:"account_id"`
		} `json:"key"`
	}
	if json.Unmarshal(e.Value, &v) == nil && v.Key.Type != "" {
		s.a.unstored[e.Key] = v.Key.Type + "|" + v.Key.AccountID
	}
}

func (s *storageView) Delete(ctx context.Context, key string) error {
	if err := s.fail("delete", key); err != nil {
		return err
	}
	s.a.w.atGate("delete:" + key)
	if s.closed.Load() {
		return errShutDown
	}
	err := s.under.Delete(ctx, key)
	if err == nil {
		w := s.a.w
		w.mu.Lock()
		delete(s.a.unstored, key)
		w.mu.Unlock()
	}
	return err
}

// fastDigest stands in for bcrypt in the long campaign (Params.FastSignatures): a
// signature still depends on the secret's salt, the client ID and the timestamp, and the
// emulator still checks its format, salt and timestamp, but costs a microsecond, not a
// millisecond on each side.
func fastDigest(salt, password []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(password)
	return h.Sum(nil)
}

func hash(xs ...uint64) uint64 {
	h := fnv.New64a()
	for _, x := range xs {
		var b [8]byte
		for i := range b {
			b[i] = byte(x >> (8 * i))
		}
		h.Write(b[:])
	}
	return h.Sum64()
}

// gate runs a second action while the first waits at a storage or network step.
type gate struct {
	prefix string
	skip   int
	then   func()
	fired  bool
	done   chan struct{}
}

// secondWait is how long (real time) a gate waits for the second action before letting
// the first go on: the second may be blocked behind a lock the first holds, which is the
// serialisation a fix may add.
const secondWait = 300 * time.Millisecond

func (w *world) atGate(point string) {
	w.mu.Lock()
	g := w.gate
	if g == nil || g.fired || !strings.HasPrefix(point, g.prefix) {
		w.mu.Unlock()
		return
	}
	if g.skip > 0 {
		g.skip--
		w.mu.Unlock()
		return
	}
	g.fired = true
	w.mu.Unlock()
	go func() {
		defer close(g.done)
		g.then()
	}()
	select {
	case <-g.done:
	case <-time.After(secondWait):
	}
}

// transport carries the backend's requests to the emulator's handler in process, applying
// the faults in force, and records what every key sent.
type transport struct{ a *app }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	a, w := t.a, t.a.w
	if err := req.Context().Err(); err != nil {
		// A real transport sends nothing for a cancelled request (an unmounted backend).
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	form, _ := url.ParseQuery(string(body))
	isToken := strings.HasSuffix(req.URL.Path, "/v1/oauth2/token")
	keyID := form.Get("type") + "|" + form.Get("account_id")

	w.netMu.Lock()
	var k *keyModel
	var verification bool
	if isToken {
		w.mu.Lock()
		k = a.key(keyID)
		k.inFlight++
		if k.inFlight > 1 {
			w.violate(invOneFlight, keyID, "app%d key %s: %d token requests in flight at once", a.idx, keyID, k.inFlight)
		}
		verification = a.verifying
		w.checkAttempt(a, k, keyID, form, verification)
		w.mu.Unlock()
	}
	resp, err := t.send(req, body, form, isToken, keyID)
	if isToken && verification {
		w.mu.Lock()
		k.inFlight--
		w.mu.Unlock()
	} else if isToken {
		w.mu.Lock()
		k.inFlight--
		k.lastAt = w.now()
		k.lastOK, k.lastError = false, "no answer"
		if err == nil {
			k.lastError = resp.Status
			if resp.StatusCode == http.StatusOK {
				k.lastOK = w.servable(resp)
			}
		}
		w.mu.Unlock()
	}
	w.netMu.Unlock()
	w.atGate("net:" + keyID)
	return resp, err
}

// checkAttempt records one HTTP attempt of key k, checking the key's budget and its
// back-off after a failed request. A verification (a config write's SELF request with
// credentials not yet stored) counts against the key's budget (README), but is not the
// key's renewal: it neither waits out the live key's back-off nor sets it, as the plugin
// keeps its outcome out of the live key's state. Under w.mu.
func (w *world) checkAttempt(a *app, k *keyModel, keyID string, form url.Values, verification bool) {
	now := w.now()
	w.stats.NaverRequests++
	w.hourly[int64(a.idx)<<40|now.Unix()/3600]++
	w.minutely[int64(now.Sub(epoch)/time.Minute)]++
	w.fragments.add(form.Get("client_secret_sign"))
	if ts := form.Get("timestamp"); ts != k.lastTS && !verification {
		// A new request, not a retry of the last one.
		if k.everFetch && !k.lastOK && k.lastAt.After(k.resetAt) && now.Sub(k.lastAt) < failureBackoff {
			w.violate(invBackoff, keyID, "app%d key %s asked Naver %s after a failed request (%s); reads must share the failure for %s",
				a.idx, keyID, now.Sub(k.lastAt), k.lastError, failureBackoff)
		}
		k.lastTS = ts
		k.everFetch = true
	}
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(k.attempts) && !k.attempts[i].After(cut) {
		i++
	}
	k.attempts = append(k.attempts[i:], now)
	if len(k.attempts) > a.perHour {
		w.violate(invKeyBudget, keyID, "app%d key %s sent %d requests within an hour; max_token_requests_per_hour is %d",
			a.idx, keyID, len(k.attempts), a.perHour)
	}
}

// servable reports whether a 200 answer carries a token that can be served (10 s of life
// at Naver). It leaves the body readable.
func (w *world) servable(resp *http.Response) bool {
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tr) != nil {
		return false
	}
	info, ok := w.emu.Token(tr.AccessToken)
	return ok && info.Expires.Sub(w.naverNow()) >= minServableLife
}

// send applies the faults in force and hands the request to the emulator.
func (t *transport) send(req *http.Request, body []byte, form url.Values, isToken bool, keyID string) (*http.Response, error) {
	a, w := t.a, t.a.w
	now := w.now()
	w.mu.Lock()
	var latency time.Duration
	var outage string
	for _, f := range w.faults {
		if !now.Before(f.until) {
			continue
		}
		switch f.kind {
		case faultLatency:
			latency = time.Duration(f.a.N) * time.Millisecond
			if f.a.B {
				latency = time.Duration(hash(w.seed, uint64(now.UnixNano()), uint64(len(keyID)))%uint64(f.a.N+1)) * time.Millisecond
			}
		case faultOutage:
			outage = f.a.S
		}
	}
	var burst string
	if isToken && outage == "" && len(w.burst) > 0 {
		burst, w.burst = w.burst[0], w.burst[1:]
		w.lastBurst = now
	}
	w.mu.Unlock()

	timeout := a.timeout
	if outage == "stall" || latency >= timeout {
		// No answer within request_timeout: the client gives up.
		w.clock.Advance(timeout)
		w.count("net-stall")
		return nil, fmt.Errorf("sim: no answer within %s: %w", timeout, context.DeadlineExceeded)
	}
	if latency > 0 {
		w.clock.Advance(latency)
		w.count("net-latency")
	}
	switch answer := outage + burst; {
	case !isToken || answer == "":
	case strings.HasPrefix(answer, "5xx"):
		w.emu.InjectFault(navercommercetest.Fault{Status: []int{500, 502, 503, 504}[hash(w.seed, uint64(now.UnixNano()))%4]})
		w.count("naver-5xx")
	case strings.HasPrefix(answer, "429-retry-after"):
		w.emu.InjectFault(navercommercetest.Fault{Status: 429, RetryAfter: strconv.Itoa(1 + int(hash(w.seed, uint64(now.UnixNano()))%120))})
		w.count("naver-429-retry-after")
	case strings.HasPrefix(answer, "429"):
		w.emu.InjectFault(navercommercetest.Fault{Status: 429})
		w.count("naver-429")
	default:
		status, _ := strconv.Atoi(answer)
		w.emu.InjectFault(navercommercetest.Fault{Status: status})
		w.count("naver-" + answer)
	}
	r := httptest.NewRequestWithContext(req.Context(), req.Method, req.URL.String(), bytes.NewReader(body))
	r.Header = req.Header.Clone()
	rec := httptest.NewRecorder()
	w.emu.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = req
	if isToken && resp.StatusCode == http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(b, &tr) == nil && tr.AccessToken != "" {
			info, ok := w.emu.Token(tr.AccessToken)
			w.mu.Lock()
			if _, seen := w.issued[tr.AccessToken]; !seen && ok {
				w.issued[tr.AccessToken] = &issuedToken{app: a.idx, gen: a.gen, key: keyID, expires: info.Expires.Add(-time.Duration(w.skew.Load()))}
				w.latest[fmt.Sprint(a.idx)+"|"+keyID] = tr.AccessToken
			}
			w.mu.Unlock()
		}
	}
	return resp, nil
}

func (w *world) count(kind string) {
	w.mu.Lock()
	w.stats.Faults[kind]++
	w.mu.Unlock()
}
