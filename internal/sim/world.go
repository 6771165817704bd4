package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
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
	// turn is held by the goroutine running the model's code (the world's actions and their
	// checks): the goroutine that made the world, and the second action of a concurrent pair
	// while it runs. A request to the backend lets it go (see app.request), so the two
	// actions of a pair overlap only in the backend, never in the model, even when the gate
	// lets the first go on before the second ended (a slow machine, -race).
	turn sync.Mutex

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
	// naverAppLimit is Naver's per-application limit of token requests an hour in this
	// world (the emulator's penalty threshold).
	naverAppLimit int
	// lostTokens are the tokens a restart lost (lostAtRestart's, for as long as they live):
	// the plugin cannot bound what Naver hands back of a token it never learnt of.
	lostTokens map[string]bool
	minutely   map[int64]int
	// keyNotes holds, per app and key, what happened to the key that a later violation of
	// it may show (its token lost in a role delete, a verification after a storage failure;
	// see classify25), under notesMu: violation reports read them under w.mu.
	keyNotes map[string][]string
	notesMu  sync.Mutex
	// verificationLost holds the tokens a config write's verification got before the write
	// failed (see classify25, finding 10).
	verificationLost map[string]bool // requests of every application per minute since the epoch
	// excusedIdx holds the indexes (in the emulator's Violations) of findings excused as
	// they happened (a forced drop's needless request).
	excusedIdx map[int]bool
	// pendingLoss holds, per app and key, a token request in flight when its backend was
	// shut down (a restart racing it): the token Naver answers with is lost to the new
	// backend, which may ask again (excused once, like lostAtRestart).
	pendingLoss map[string]bool
	// forcedLive holds, per app and key, the token Naver still held when an operator dropped
	// it with force=true: the key's next request may be needless (excused once).
	forcedLive map[string]string
	// pair is the concurrent pair of reads of one key under way, if any; pairActive is set
	// while any concurrent action runs (the clock may move under a read).
	pair       *readPair
	pairActive bool
}

// readPair counts the new requests of one key while two reads of it run at once.
type readPair struct {
	app      int
	key      string
	requests int
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
	at        time.Time // when Naver issued it
	cred      int       // app.credGen when it was issued
	// verification: issued to a config write's verification (credentials perhaps never
	// stored).
	verification bool
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
	cfgSecret  string
	configured bool
	gen        int // secret rotations
	perHour    int
	ahead      bool
	retries    int
	timeout    time.Duration
	storage    *logical.InmemStorage
	// view and b are the current backend and its storage; a concurrent restart replaces
	// them under bmu (see current), and counts restarts.
	bmu              sync.Mutex
	view             *storageView
	b                navercommerce.Backend
	restarts         atomic.Int64
	cfgBase          string // base_url in the plugin's config
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
	failTurn int // and of its failing sellers

	// credGen counts changes of the credentials tokens belong to (client_secret, base_url);
	// credSecret and credBase are the last ones configured (kept across a config delete).
	credGen    int
	credSecret string
	credBase   string
	// baseOK: the configured base_url reaches the emulator; oldHost is the host of an
	// unreachable base_url the config named before the current one.
	baseOK  bool
	oldHost string
	// appPerHour is max_application_requests_per_hour (0: automatic); aboveNaverAt is when
	// a value above Naver's limit was last replaced.
	appPerHour   int
	aboveNaverAt time.Time
	// cfgWriting counts config writes under way (a concurrent action may run meanwhile);
	// verifyCred is credGen as the one under way would make it.
	cfgWriting int
	verifyCred int
	// sentMinutes counts the token requests the plugin sent (its HTTP attempts), per Unix
	// minute; restartMinutes are the minutes a backend was shut down in.
	sentMinutes    map[int64]int
	restartMinutes map[int64]bool
	// accountRefusals are Naver's refusals of SELLER accounts (4xx but 429) of the last
	// hours, oldest first, for the bound on new accounts (max_new_accounts_per_hour).
	accountRefusals []accountRefusal
	// window is the last hour's token requests, for the application budget; inUseN is the
	// count of tokens in use made at inUseAt, good until inUseUntil (see world.inUse).
	window     appWindow
	inUseAt    time.Time
	inUseN     int
	inUseUntil time.Time
	// inUseEnds holds each key's inUseUntil, by keyModel.idx: world.inUse walks them
	// every time a counted key leaves use (a slice of times, not of keys, for speed).
	inUseEnds []time.Time
	// lastAnswered: the application's last token request got an answer that was not a
	// failure of Naver's (no answer, 5xx, 429), at lastRequestAt.
	lastAnswered       bool
	lastRequestAt      time.Time
	lastFailedAt       time.Time // the application's last token request Naver failed (no answer, 5xx, 429)
	baseChangedAt      time.Time // the last config write that changed base_url's address
	credChangedAt      time.Time // the last config write that changed client_secret or base_url
	lastAppCountsFault time.Time
	// lastTokenStorageFault: the last storage failure injected on tokens/.
	lastTokenStorageFault time.Time
	// lastServed is the last lease a read returned, for lease revocations and renewals.
	lastServed *logical.Response
	// authorisedSet holds the sellers that authorised the application (see authorised).
	authorisedSet map[string]bool
}

type roleModel struct {
	exists  bool
	damaged bool
	typ     string
	account string
	// allowed holds a many-seller role's account IDs and globs (nil: one account). A read
	// of one of its sellers sees a model of its own (app.readModel).
	allowed []string
	ttl     time.Duration
	minTTL  time.Duration // min_remaining_ttl
	noLease bool
	// uncertain: two writes raced, or a write's outcome could not be read back; the model
	// cannot say what the role is.
	uncertain bool
}

func (r *roleModel) key() string { return r.typ + "|" + r.account }

func (r *roleModel) many() bool { return len(r.allowed) > 0 }

// allows reports whether a many-seller role serves account.
func (r *roleModel) allows(account string) bool {
	for _, g := range r.allowed {
		if globMatch(g, account) {
			return true
		}
	}
	return false
}

// globMatch matches s against a pattern whose only special character is '*' (any run of
// characters), as allowed_account_ids does.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// readModel is what a read of token/<path> should get, as the model knows the roles:
// path is a role's name, or "<role>/<account>" for a seller of a many-seller role. A read
// the plugin must refuse (a many-seller role read without an account, an account the role
// does not allow) gets a model of no role.
func (a *app) readModel(path string) roleModel {
	name, account, seller := strings.Cut(path, "/")
	r := a.roles[name]
	if r == nil {
		return roleModel{}
	}
	m := *r
	if !m.exists || m.damaged {
		return m
	}
	switch {
	case !seller && !m.many():
		return m
	case seller && m.many() && m.allows(account) && validAccount(account):
		m.typ, m.account, m.allowed = "SELLER", account, nil
		return m
	}
	return roleModel{uncertain: m.uncertain}
}

// validAccount: an account ID a read path may name (one seller: no glob, no white space).
func validAccount(s string) bool {
	return s != "" && len(s) <= 128 && !strings.ContainsAny(s, "*/ \t")
}

// names reports whether some role of the model names key id ("TYPE|account").
func (a *app) names(id string) bool {
	typ, account, _ := strings.Cut(id, "|")
	for _, r := range a.roles {
		if !r.exists || r.damaged {
			continue
		}
		if r.many() {
			if typ == "SELLER" && r.allows(account) {
				return true
			}
		} else if r.key() == id {
			return true
		}
	}
	return false
}

// keyModel is what the simulator saw of one key's requests to Naver.
type keyModel struct {
	idx      int         // its place in app.inUseEnds
	attempts []time.Time // since the last restart or credential change, for the budget
	inFlight int
	lastTS   string // timestamp of the last fetch (retries reuse it)
	// Of its last attempt, verifications too: the plugin's request (its retries carry the
	// same context) and when its answer (or error) came back.
	sentReq    context.Context
	answeredAt time.Time
	lastAt     time.Time // when its last attempt ended
	lastOK     bool      // its last attempt gave a servable token
	lastError  string
	resetAt    time.Time // restart, credential change or drop: back-off and budget start over
	everFetch  bool
	lastRead   time.Time // when a read through a role last started
	// Naver's Retry-After: its last answer asking the key to wait (raAt) until raUntil;
	// raReset is when the plugin may have forgotten it (a restart, new credentials).
	raAt, raUntil, raReset time.Time
	issued                 bool      // Naver issued the key a token (for the application budget)
	issuedAt               time.Time // Naver's last answer with a token for the key (handed back too)
	latestExpires          time.Time // when the newest token Naver issued the key expires (w.latest)
	droppedAt              time.Time // the last drop that succeeded
	failedAt               time.Time // the key's last failed request (a drop does not forget it)
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
		excusedIdx:    map[int]bool{},
		lostTokens:    map[string]bool{},

		keyNotes:         map[string][]string{},
		verificationLost: map[string]bool{},
		pendingLoss:      map[string]bool{},
		forcedLive:       map[string]string{},
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

			sentMinutes: map[int64]int{}, restartMinutes: map[int64]bool{},
		}
		w.secrets[a.secret] = true
		w.secrets[a.secret[7:]] = true
		apps = append(apps, navercommercetest.Application{ClientID: a.clientID, ClientSecret: a.secret, AccountIDs: authorised(p, i)})
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
	keys := p.keysPerApp()
	if p.Alphabet > 0 {
		keys += alphabetPool
	}
	w.naverAppLimit = navercommercetest.DefaultPenaltyRequestsPerHour
	if limit := 3 * keys; limit > navercommercetest.DefaultPenaltyRequestsPerHour {
		emuConfig.Penalty.RequestsPerHour = limit
		w.naverAppLimit = limit
	}
	if p.FastSignatures {
		emuConfig.SignatureDigest = fastDigest
	}
	w.emu = navercommercetest.New(emuConfig)
	for _, a := range w.apps {
		a.start()
	}
	w.turn.Lock() // the maker of the world runs its model
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
	if old, _ := a.current(); old != nil {
		a.countRefusals()
		a.w.mu.Lock()
		for keyID, k := range a.keys {
			if k.inFlight > 0 {
				a.w.pendingLoss[fmt.Sprint(a.idx)+"|"+keyID] = true
			}
		}
		if g := a.w.gate; g != nil && g.fired && strings.HasPrefix(g.point, "net:") {
			// A read held with Naver's answer in hand: the new backend never learns of
			// the token (a restart while a request is at Naver loses what it brings).
			id := fmt.Sprint(a.idx) + "|" + strings.TrimPrefix(g.point, "net:")
			a.w.lostAtRestart[id] = a.w.latest[id]
			a.w.lostTokens[a.w.latest[id]] = true
		}
		a.restartMinutes[a.w.now().Unix()/60] = true
		a.w.mu.Unlock()
		_, oldView := a.current()
		oldView.closed.Store(true)
		old.Cleanup(a.w.ctx)
		a.w.mu.Lock()
		for _, keyID := range a.unstored {
			id := fmt.Sprint(a.idx) + "|" + keyID
			a.w.lostAtRestart[id] = a.w.latest[id]
			a.w.lostTokens[a.w.latest[id]] = true
		}
		a.unstored = map[string]string{}
		a.w.mu.Unlock()
	}
	view := &storageView{a: a, under: a.storage}
	conf := logical.TestBackendConfig()
	conf.StorageView = view
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: &a.w.logs, Level: hclog.Debug, Name: fmt.Sprintf("app%d", a.idx)})
	opts := navercommerce.Options{
		Now:       a.w.clock.Now,
		Transport: &transport{a: a},
		// Retry waits carry the client's random jitter; rounded up to whole seconds they
		// are the same on every replay (max_retries ≤ 2 in the mix: waits under 1 s).
		RetryWait: func(d time.Duration) { a.w.clock.Advance((d + time.Second - 1) / time.Second * time.Second) },
		// The hold before a new token's write is real time, which the simulation's steps
		// would each wait out (160,850 key-days a minute became 8,990). A write in flight
		// for any length, and a crash that loses it, are the model checker's ("restart").
		StoreNewTokensAtOnce: true,
	}
	if a.w.p.FastSignatures {
		opts.SignatureDigest = fastDigest
	}
	b, err := navercommerce.New(a.w.ctx, conf, opts)
	if err != nil {
		panic(fmt.Sprintf("sim: starting a backend: %v", err))
	}
	a.bmu.Lock()
	a.b, a.view = b, view
	a.bmu.Unlock()
	a.restarts.Add(1)
	a.w.mu.Lock()
	a.lastRestart = a.w.now()
	for _, k := range a.keys {
		k.reset(a.w.now())
	}
	a.w.mu.Unlock()
}

// backend returns the app's backend.
func (a *app) backend() navercommerce.Backend {
	b, _ := a.current()
	return b
}

// current returns the app's backend and its storage view.
func (a *app) current() (navercommerce.Backend, *storageView) {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	return a.b, a.view
}

// countRefusals adds the current backend's application budget refusals (its metric) to
// appBudgetRefusals; the backend is about to be replaced or the run ends. Only runs that
// report them count them (Params.CountRefusals).
func (a *app) countRefusals() {
	if !a.w.p.CountRefusals {
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
	k.raReset = now
	k.lastOK = true
	k.lastError = ""
}

// authorised reports whether Naver serves r's key to app a: SELF, or a seller that
// authorised the application.
func (w *world) authorised(a *app, r roleModel) bool {
	if r.typ != "SELLER" {
		return true
	}
	if a.authorisedSet == nil {
		a.authorisedSet = map[string]bool{}
		for _, id := range authorised(w.p, a.idx) {
			a.authorisedSet[id] = true
		}
	}
	return a.authorisedSet[r.account]
}

// authorised lists the sellers that authorised application i at Naver: the single-account
// roles' sellers and the many-seller pool. Others (a caller's guesses through a wildcard
// role) are refused.
func authorised(p Params, i int) []string {
	out := make([]string, 0, p.Accounts+p.sellerPool())
	for n := 0; n < p.Accounts; n++ {
		out = append(out, accountID(i, n))
	}
	for n := 0; n < p.sellerPool(); n++ {
		out = append(out, manySellerID(i, n))
	}
	return out
}

func (a *app) key(id string) *keyModel {
	k := a.keys[id]
	if k == nil {
		k = &keyModel{lastOK: true, idx: len(a.inUseEnds)}
		a.keys[id] = k
		a.inUseEnds = append(a.inUseEnds, time.Time{})
	}
	return k
}

// request sends one request to the current backend as Vault's router would, existence
// check included. It reports whether a storage fault was injected meanwhile.
func (a *app) request(op logical.Operation, path string, data map[string]any) (*logical.Response, error, bool) {
	before, restarts := a.w.storageFaults.Load(), a.restarts.Load()
	b, view := a.current()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: view, MountPoint: mount}
	var resp *logical.Response
	var err error
	a.w.turn.Unlock() // the backend's work may run the other action of a pair
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
	a.w.turn.Lock()
	// A request whose backend was shut down under it (a concurrent restart) may fail like
	// one that met a storage failure.
	return resp, err, a.w.storageFaults.Load() != before || a.restarts.Load() != restarts
}

var errShutDown = errors.New("sim: storage closed: this backend was shut down")

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
	point  string // where it fired
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
	g.point = point
	w.mu.Unlock()
	go func() {
		defer close(g.done)
		w.turn.Lock()
		defer w.turn.Unlock()
		g.then()
	}()
	select {
	case <-g.done:
	case <-time.After(secondWait):
	}
}
