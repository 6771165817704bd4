// Package navercommercetest emulates the Naver Commerce API gateway's token
// endpoint, in the style of net/http/httptest, so the secrets engine can be
// tested without the internet.
//
// The emulator is deliberately at least as strict as the real gateway: it
// verifies the bcrypt client_secret_sign independently of any signer, enforces
// the 5-minute timestamp window, rejects malformed or non-compliant requests,
// applies Naver's token lifetime rule (the same token is returned while it has
// 30 minutes or more left) and records non-compliant behaviour (parameters in
// the query string, account_id with type=SELF, concurrent or needless token
// requests) in Violations, because Naver penalises such applications.
//
// # Naver's penalty
//
// The penalty is modelled and on by default (PenaltyConfig): after the first
// violation, or more than 60 token requests of an application within a
// sliding hour, the application is limited for an hour of emulator time to
// about one token request per hour; every other token request gets 429 with
// Naver's error JSON, code GW.RATE_LIMIT, naming the offence. Stats records
// the penalty (Penalties, PenalisedUntil, PenaltyReason) so a test that
// over-asks fails loudly; Reset clears it. Tests that over-ask on purpose set
// Config.Penalty.Disabled.
//
// # Upstream behaviour that cannot be seen
//
// Config.Latency and Config.LatencyJitter hold every token request (real
// time) before it is judged; the request is judged at the emulator's clock
// after the hold, so a test that moves a shared Clock while a request is held
// tests a client's send-time versus receive-time reckoning.
// Config.ReusedTokenFullLifetime makes a handed-back token report expires_in
// 10800 instead of its remaining life, as Naver may. Config.JWTTokens mints
// JWT-shaped tokens with an exp claim. Each has a setter for run time.
//
// # Use
//
// Use New for an http.Handler, or NewServer (NewTLSServer for HTTPS, with
// Server.Client and Server.Certificate) for a running loopback server, and
// NewTokenRequest (or Sign, TokenForm) to build a correctly signed token
// request. Besides the token endpoint it serves a protected API
// (GET {BasePath}/v1/seller/account) to prove that a token works, and admin
// endpoints under /_emulator/ for tests that drive a separate process
// (cmd/navercommerce-emulator):
//
//	GET  /_emulator/stats                      counters, violations, penalties (Stats)
//	POST /_emulator/reset                      Reset
//	POST /_emulator/faults                     {"status":503,"retry_after":"30","count":1,"delay":"2s","body":"...","drop_connection":false,
//	                                           "account_id":"...","type":"SELLER"} (account_id, type: aim it; omitted = any request)
//	DELETE /_emulator/faults                   ClearFaults: the outage ends, tokens stay -> {"cleared":1}
//	POST /_emulator/token-lifetime             {"token_lifetime":"31m"}
//	POST /_emulator/client-secret              {"client_id":"...","client_secret":"$2a$04$..."}
//	POST /_emulator/verify                     form token=... -> {"valid":true}
//	POST /_emulator/kill-token                 form token=... -> {"killed":true} (as a seller re-authorising)
//	POST /_emulator/latency                    {"latency":"250ms","jitter":"50ms"} (omitted = 0)
//	POST /_emulator/reused-token-full-lifetime {"enabled":true}
//	POST /_emulator/jwt-tokens                 {"enabled":true}
//	GET  /_emulator/penalty                    the penalty settings in effect
//	POST /_emulator/penalty                    {"disabled":false,"violations_allowed":0,"requests_per_hour":60,"duration":"1h","retry_after":false}
//	                                           (replaces all settings; omitted = default)
package navercommercetest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultTokenLifetime   = 3 * time.Hour
	DefaultReuseThreshold  = 30 * time.Minute
	DefaultTimestampWindow = 5 * time.Minute
	DefaultBasePath        = "/external"
)

// Application is an application registered with the emulated gateway.
type Application struct {
	ClientID string
	// ClientSecret is a bcrypt salt such as "$2a$04$QKLnou1D2cSH19Pia30bcu".
	ClientSecret string
	// AccountIDs lists the sellers that authorised this application; empty
	// means any account_id is accepted for type=SELLER.
	AccountIDs []string
}

// Config configures an Emulator. Zero values select the defaults.
type Config struct {
	Applications    []Application
	Now             func() time.Time // emulator clock; nil = time.Now
	TokenLifetime   time.Duration    // default 3h
	ReuseThreshold  time.Duration    // default 30m: a token with >= this left is returned again
	TimestampWindow time.Duration    // default 5m
	BasePath        string           // default "/external"
	Logger          *log.Logger      // nil = silent; secrets, signatures and tokens are never logged

	// Latency holds every token request this long (real time) before it is
	// judged, plus a uniformly random extra of 0..LatencyJitter: the
	// network and gateway time of a real request. The request is judged
	// (timestamp window, 30-minute rule, expiry, expires_in) at the
	// emulator's clock after the hold, so a test that moves a shared Clock
	// while a request is held sees the request answered at the new time.
	Latency       time.Duration
	LatencyJitter time.Duration

	// ReusedTokenFullLifetime makes a token handed back again (30 minutes
	// or more left) report expires_in as its full lifetime (10800) instead
	// of its remaining life. Naver does not document which it does; the
	// token still dies at its real expiry.
	ReusedTokenFullLifetime bool

	// JWTTokens mints JWT-shaped tokens,
	// base64url(header).base64url({"exp":...,"iat":...,"jti":...}).base64url(random),
	// whose exp (Unix seconds, rounded down) a client may use to cap the
	// expiry. The default is opaque random strings.
	JWTTokens bool

	// SignatureDigest, when set, replaces bcrypt's hash in the signature check: given the
	// 16-byte salt and client_id + "_" + timestamp it returns the 23 bytes bcrypt would
	// encode. Everything else about the signature is checked as usual. It is for a
	// simulation that sends millions of requests, whose plugin signs with the same function.
	SignatureDigest func(salt, password []byte) []byte

	// Penalty models Naver's penalty for needless, concurrent,
	// non-compliant or too many token requests. The zero value is on.
	Penalty PenaltyConfig
}

// Emulator is the emulated gateway, an http.Handler. All methods are safe for
// concurrent use.
type Emulator struct {
	now      func() time.Time
	reuse    time.Duration
	window   time.Duration
	basePath string
	logger   *log.Logger
	// seq numbers token requests for the penalty's bookkeeping; it is
	// never reset, so requests in flight across a Reset stay distinct.
	seq atomic.Uint64

	// closing aborts fault delays when a Server shuts down, so Close does
	// not wait for them.
	closing   chan struct{}
	closeOnce sync.Once

	mu                 sync.Mutex
	apps               map[string]*application
	lifetime           time.Duration
	latency            time.Duration
	jitter             time.Duration
	reusedFullLifetime bool
	jwtTokens          bool
	penalty            PenaltyConfig            // resolved: defaults filled in
	penalties          map[string]*penaltyState // by client ID
	tokenRequests      int
	issued             int
	keys               map[tokenKey]*keyStats
	current            map[tokenKey]*issuedToken // newest token per key
	tokens             map[string]*issuedToken   // every unexpired token, by value
	faults             []Fault
	violations         []string
	nextPrune          time.Time // when issue next forgets expired tokens

	// digest replaces bcrypt's hash when verifying signatures (Config.SignatureDigest).
	digest func(salt, password []byte) []byte
	// lastVerified memoises the last signature that verified: requests signed in the same
	// millisecond (a plugin renewing many keys at once) carry the same one, and bcrypt is
	// most of what a request costs. Only a byte-for-byte repeat under the same secret hits.
	sigMu        sync.Mutex
	lastVerified verifiedSignature
}

type verifiedSignature struct {
	secret                    clientSecret
	clientID, timestamp, sign string
}

type application struct {
	secret clientSecret
	// generation changes on every rotation so a signature verified against
	// the old secret cannot slip through while the secret is being replaced.
	generation int
	accounts   map[string]bool // nil = any account
}

type tokenKey struct{ clientID, typ, accountID string }

func (k tokenKey) String() string { return k.clientID + "|" + k.typ + "|" + k.accountID }

type keyStats struct {
	requests    int
	inFlight    int
	maxInFlight int
}

type issuedToken struct {
	value    string
	key      tokenKey
	expires  time.Time
	lifetime time.Duration // as minted, for ReusedTokenFullLifetime
}

// New returns an Emulator for cfg. It panics if an application has an empty
// or duplicate client ID or a malformed client secret (see CheckClientSecret),
// or on a negative latency or penalty duration: such a fixture is a bug in
// the test, not a condition to emulate.
func New(cfg Config) *Emulator {
	if err := checkLatency(cfg.Latency, cfg.LatencyJitter); err != nil {
		panic("navercommercetest: " + err.Error())
	}
	penalty, err := cfg.Penalty.resolved()
	if err != nil {
		panic("navercommercetest: " + err.Error())
	}
	e := &Emulator{
		now:                cfg.Now,
		reuse:              cfg.ReuseThreshold,
		window:             cfg.TimestampWindow,
		basePath:           normaliseBasePath(cfg.BasePath),
		logger:             cfg.Logger,
		closing:            make(chan struct{}),
		apps:               make(map[string]*application),
		lifetime:           cfg.TokenLifetime,
		latency:            cfg.Latency,
		jitter:             cfg.LatencyJitter,
		reusedFullLifetime: cfg.ReusedTokenFullLifetime,
		jwtTokens:          cfg.JWTTokens,
		penalty:            penalty,
		digest:             cfg.SignatureDigest,
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.reuse <= 0 {
		e.reuse = DefaultReuseThreshold
	}
	if e.window <= 0 {
		e.window = DefaultTimestampWindow
	}
	if e.lifetime <= 0 {
		e.lifetime = DefaultTokenLifetime
	}
	for _, a := range cfg.Applications {
		if a.ClientID == "" {
			panic("navercommercetest: application with an empty ClientID")
		}
		if _, dup := e.apps[a.ClientID]; dup {
			panic(fmt.Sprintf("navercommercetest: duplicate application %q", a.ClientID))
		}
		sec, err := parseClientSecret(a.ClientSecret)
		if err != nil {
			panic(fmt.Sprintf("navercommercetest: application %q: %v", a.ClientID, err))
		}
		app := &application{secret: sec}
		if len(a.AccountIDs) > 0 {
			app.accounts = make(map[string]bool, len(a.AccountIDs))
			for _, id := range a.AccountIDs {
				app.accounts[id] = true
			}
		}
		e.apps[a.ClientID] = app
	}
	e.resetLocked()
	return e
}

func normaliseBasePath(p string) string {
	if p == "" {
		return DefaultBasePath
	}
	p = strings.TrimRight(p, "/")
	if p != "" && !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// BasePath returns the normalised base path the API is served under.
func (e *Emulator) BasePath() string { return e.basePath }

// TokenValid reports whether token was issued by this emulator and has not
// expired at the emulator's clock (and was not revoked by a secret rotation).
func (e *Emulator) TokenValid(token string) bool {
	_, ok := e.lookupToken(token)
	return ok
}

func (e *Emulator) lookupToken(token string) (tokenKey, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tokens[token]
	if t == nil || !e.now().Before(t.expires) {
		return tokenKey{}, false
	}
	return t.key, true
}

// SetTokenLifetime changes the lifetime of tokens minted from now on.
func (e *Emulator) SetTokenLifetime(d time.Duration) {
	if d <= 0 {
		panic(fmt.Sprintf("navercommercetest: token lifetime %v is not positive", d))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lifetime = d
}

// SetClientSecret rotates an application's secret, as re-issuing it in the
// API center does: the old secret stops verifying at once. Tokens issued to
// the application are revoked too, which is stricter than anything Naver
// documents: it makes a cache that keeps serving tokens minted under the old
// credentials visible to TokenValid. It panics for an unknown client or a
// malformed secret.
func (e *Emulator) SetClientSecret(clientID, secret string) {
	if err := e.setClientSecret(clientID, secret); err != nil {
		panic("navercommercetest: " + err.Error())
	}
}

func (e *Emulator) setClientSecret(clientID, secret string) error {
	sec, err := parseClientSecret(secret)
	if err != nil {
		return fmt.Errorf("rotating the secret of %q: %w", clientID, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	app := e.apps[clientID]
	if app == nil {
		return fmt.Errorf("rotating the secret of %q: unknown client", clientID)
	}
	app.secret = sec
	app.generation++
	for v, t := range e.tokens {
		if t.key.clientID == clientID {
			delete(e.tokens, v)
		}
	}
	for k := range e.current {
		if k.clientID == clientID {
			delete(e.current, k)
		}
	}
	return nil
}

// KillToken makes Naver refuse token from now on, as a seller's re-authorisation of the
// application would: protected APIs answer 401 GW.AUTHN, TokenValid reports false, and the
// next token request for its key is issued a new token (and is not needless). It reports
// whether the token was known and unexpired.
func (e *Emulator) KillToken(token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tokens[token]
	if !ok {
		return false
	}
	delete(e.tokens, token)
	if e.current[t.key] == t {
		delete(e.current, t.key)
	}
	return e.now().Before(t.expires)
}

// SetReusedTokenFullLifetime switches the reused-token mode from now on (see
// Config.ReusedTokenFullLifetime).
func (e *Emulator) SetReusedTokenFullLifetime(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reusedFullLifetime = on
}

// SetJWTTokens switches JWT-shaped tokens on or off for tokens minted from
// now on (see Config.JWTTokens).
func (e *Emulator) SetJWTTokens(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.jwtTokens = on
}

// Reset clears counters, violations, penalties, tokens and queued faults.
// The settings (token lifetime, latency, modes, penalty settings) and the
// applications' secrets are kept. To end an outage and keep the tokens
// handed out, use ClearFaults.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.resetLocked()
}

func (e *Emulator) resetLocked() {
	e.tokenRequests = 0
	e.issued = 0
	e.faults = nil
	e.violations = nil
	e.penalties = make(map[string]*penaltyState)
	e.current = make(map[tokenKey]*issuedToken)
	e.tokens = make(map[string]*issuedToken)
	// Requests still in flight must keep balancing their counters, so keep
	// those keys with their live in-flight count.
	keys := make(map[tokenKey]*keyStats)
	for k, s := range e.keys {
		if s.inFlight > 0 {
			keys[k] = &keyStats{inFlight: s.inFlight, maxInFlight: s.inFlight}
		}
	}
	e.keys = keys
}

// close aborts pending fault delays; used when a Server shuts down.
func (e *Emulator) close() {
	e.closeOnce.Do(func() { close(e.closing) })
}

func (e *Emulator) logf(format string, args ...any) {
	if e.logger != nil {
		e.logger.Printf(format, args...)
	}
}

// issue applies Naver's lifetime rule for key, at the emulator's clock now
// (after any latency): the current token is returned again while it has at
// least the reuse threshold left, otherwise a new one is minted and the old
// one stays valid until its own expiry. It fails if the application's secret
// was rotated after the signature was verified.
func (e *Emulator) issue(key tokenKey, generation int, seq uint64) (token string, expiresIn int64, reused bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	app := e.apps[key.clientID]
	if app == nil || app.generation != generation {
		return "", 0, false, errSecretRotated
	}
	now := e.now()
	if cur := e.current[key]; cur != nil {
		if left := cur.expires.Sub(now); left >= e.reuse {
			// Naver penalises excessive token requests; asking again while
			// the token has this much left buys the client nothing.
			e.violationLocked(key, seq, now, "needless token request: %s asked again while its token had %v left (>= %v)",
				key, left.Truncate(time.Second), e.reuse)
			expiresIn := int64(left / time.Second)
			if e.reusedFullLifetime {
				expiresIn = int64(cur.lifetime / time.Second)
			}
			return cur.value, expiresIn, true, nil
		}
	}
	// Expired tokens are forgotten once a minute of the emulator's clock, not at every
	// issue: with thousands of live tokens (a simulation of 10,000 sellers) a scan per
	// request made the emulator quadratic. Every lookup checks the expiry itself.
	if !now.Before(e.nextPrune) {
		for v, t := range e.tokens {
			if !now.Before(t.expires) {
				delete(e.tokens, v)
			}
		}
		e.nextPrune = now.Add(time.Minute)
	}
	expires := now.Add(e.lifetime)
	value, err := e.mintLocked(now, expires)
	if err != nil {
		return "", 0, false, fmt.Errorf("minting a token: %w", err)
	}
	t := &issuedToken{value: value, key: key, expires: expires, lifetime: e.lifetime}
	e.tokens[value] = t
	e.current[key] = t
	e.issued++
	return value, int64(e.lifetime / time.Second), false, nil
}

// randomString returns n random bytes as unpadded base64url.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func newTraceID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms; a fixed ID
		// still lets the response be answered.
		return "00000000000000000000000000000000"
	}
	return hex.EncodeToString(b)
}

// ServeHTTP routes the API under the base path and the admin endpoints under
// /_emulator/. Every response carries a GNCP-GW-Trace-ID header.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	traceID := newTraceID()
	w.Header().Set(traceHeader, traceID)
	switch p := r.URL.Path; {
	case p == e.basePath+"/v1/oauth2/token":
		e.serveToken(w, r, traceID)
	case p == e.basePath+"/v1/seller/account":
		e.serveAccount(w, r, traceID)
	case strings.HasPrefix(p, adminPrefix):
		e.serveAdmin(w, r)
	default:
		e.writeError(w, traceID, http.StatusNotFound, "GW.NOT_FOUND", "no API at "+p, nil)
	}
}

// sortedKeys returns the keys of a url.Values-like map in order, for stable
// error messages.
func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
