package navercommerce

// Serving tokens: the cache of one token per key, the read path, and the single flight
// that lets one request per key reach Naver. What is known about tokens lives in
// token_facts.go, budgets and back-off in token_budget.go, periodic work in
// token_maintenance.go.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/singleflight"
)

const (
	// refreshWindow mirrors Naver's rule: a token with this much life left is handed back
	// unchanged by Naver, so asking earlier buys nothing; with less left Naver issues a new one.
	refreshWindow = 30 * time.Minute
	// minRefetchInterval: while its cached token is still good, a key asks at most this
	// often, whatever Naver's answers say of the token's life.
	minRefetchInterval = 10 * time.Second
	// sameTokenPause: when Naver hands back the token the cache already has, it thinks 30
	// minutes or more are left (its clock and ours disagree); the key waits this long.
	sameTokenPause = time.Minute
	// minServableLife is the least life a token must have to be handed out at all; it also
	// keeps every lease at 10 s or more (Vault turns a lease TTL of 0 into 768 h).
	minServableLife = 10 * time.Second
	// minAheadLife: with background refresh on, a token in the 30-minute window that has at
	// least this much left is served at once while a new one is requested behind the read.
	minAheadLife = 5 * time.Minute

	// Back-off after failed requests, for reads: failureBackoff (rateLimitBackoff after a 429,
	// or Retry-After), doubled per consecutive failure, at most maxBackoff.
	failureBackoff   = 5 * time.Second
	rateLimitBackoff = 30 * time.Second
	maxBackoff       = 5 * time.Minute
	// Back-off for background renewal across periodic runs: doubled per consecutive failure
	// from backgroundBackoff, at most maxBackgroundBackoff.
	backgroundBackoff    = time.Minute
	maxBackgroundBackoff = time.Hour

	// renewConcurrency bounds the requests one periodic run has in flight.
	renewConcurrency = 4
	// periodicBudget bounds a periodic run that Vault gave no deadline; periodicMargin is
	// kept free before a deadline it did give.
	periodicBudget = 30 * time.Second
	periodicMargin = 2 * time.Second

	// storageSweepInterval: how often the periodic run sweeps storage of expired tokens.
	storageSweepInterval = time.Hour

	// idleKeyLifetime: a key with no token, no read and no request for this long is forgotten.
	idleKeyLifetime = 24 * time.Hour

	tokenStoragePrefix = "tokens/"
)

// fetchFunc asks Naver for the key's token.
type fetchFunc func(ctx context.Context, key tokenKey) (accessToken, error)

// cachePolicy is what the current config says about getting tokens; made once per config.
type cachePolicy struct {
	credentials string // credentialsID of the config
	ahead       bool   // background refresh
	perHour     int    // max token requests per key per hour
	fetch       fetchFunc
}

// keyState is everything the cache knows of one key in one credentials generation.
type keyState struct {
	key tokenKey
	gen uint64

	token atomic.Pointer[cachedToken]
	// dropped is the token an operator dropped: if Naver hands it back, its known life
	// still bounds it.
	dropped atomic.Pointer[cachedToken]
	// lastRead (Unix nanoseconds) tells background refresh whether anyone uses the key.
	lastRead atomic.Int64
	// roles are the names of the roles read through the key, copied on write.
	roles atomic.Pointer[map[string]struct{}]

	mu             sync.Mutex
	failures       int       // consecutive failed requests
	failedWith     string    // credentials of the failures: back-offs bind only them
	backoffUntil   time.Time // reads do not ask Naver before
	backoffErr     error     // the failure reads share meanwhile
	nextBackground time.Time // background renewal does not ask Naver before
	notBefore      time.Time // Naver handed back the same token: do not ask before
	lastError      *keyError
	checkRoles     bool // a role of the key changed: the periodic run checks it is still named
}

// keyError is the last failure of a key, as status reports it.
type keyError struct {
	At         time.Time
	StatusCode int
	Code       string
	Message    string
	TraceID    string
}

// markRead records a read at now, writing only when the second changes: every read of a
// warm key goes through here, and a shared cache line should stay shared.
func (ks *keyState) markRead(now time.Time) {
	n := now.UnixNano()
	if n-ks.lastRead.Load() > int64(time.Second) {
		ks.lastRead.Store(n)
	}
}

func (ks *keyState) addRole(name string) {
	for {
		old := ks.roles.Load()
		if old != nil {
			if _, ok := (*old)[name]; ok {
				return
			}
		}
		next := make(map[string]struct{}, 1)
		if old != nil {
			for n := range *old {
				next[n] = struct{}{}
			}
		}
		next[name] = struct{}{}
		if ks.roles.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (ks *keyState) removeRole(name string) bool {
	for {
		old := ks.roles.Load()
		if old == nil {
			return false
		}
		if _, ok := (*old)[name]; !ok {
			return false
		}
		next := make(map[string]struct{}, len(*old))
		for n := range *old {
			if n != name {
				next[n] = struct{}{}
			}
		}
		if ks.roles.CompareAndSwap(old, &next) {
			return true
		}
	}
}

func (ks *keyState) roleNames() []string {
	m := ks.roles.Load()
	if m == nil {
		return nil
	}
	names := make([]string, 0, len(*m))
	for n := range *m {
		names = append(names, n)
	}
	return names
}

// tokenCache holds one token per key in memory, backed by Vault storage so a restart or a
// leader change does not set off a burst of requests, and lets at most one request per key
// reach Naver at a time.
type tokenCache struct {
	now     func() time.Time
	logger  hclog.Logger
	metrics *metrics

	// ctx lives as long as the mount: requests to Naver outlive the read that started them
	// (others wait on them too) but not an unmount or reload.
	ctx    context.Context
	cancel context.CancelFunc

	// entries maps tokenKey → *keyState; the warm path is one lookup with no lock.
	entries  sync.Map
	requests sync.Map // tokenKey → *requestLog
	flights  singleflight.Group
	// generation changes whenever the credentials do, so results of requests made with old
	// credentials — tokens and failures alike — are never published.
	generation atomic.Uint64
	// mu orders publishing (read lock) against purging (write lock).
	mu sync.RWMutex
	// credentials are those of the config in use (see useCredentials); under mu.
	credentials string
	// lastSweep is when storage was last swept of stale tokens; under mu.
	lastSweep time.Time
}

func newTokenCache(now func() time.Time, logger hclog.Logger) *tokenCache {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &tokenCache{now: now, logger: logger, ctx: ctx, cancel: cancel}
}

// close stops requests in flight; the mount is going away.
func (c *tokenCache) close() { c.cancel() }

// state returns the key's state in the current generation, creating it.
func (c *tokenCache) state(key tokenKey) *keyState {
	if v, ok := c.entries.Load(key); ok {
		return v.(*keyState)
	}
	ks := &keyState{key: key, gen: c.generation.Load()}
	v, _ := c.entries.LoadOrStore(key, ks)
	return v.(*keyState)
}

// tokenResult is what one flight hands to every caller waiting on it.
type tokenResult struct {
	token *cachedToken
	// fetched is set when the token came from a request made for this flight.
	fetched bool
	// renewErr is set when renewing failed (or was not allowed) but the cached token still
	// had life to serve.
	renewErr error
	// backingOff is set when renewErr is an earlier failure shared during its back-off:
	// nothing was asked this time.
	backingOff bool
}

func (r tokenResult) warning() string {
	if r.renewErr == nil {
		return ""
	}
	return fmt.Sprintf("renewing this token failed (%v); serving the cached token until it expires", r.renewErr)
}

// get returns the key's token for a read through role, asking Naver through p.fetch only
// when Naver would issue a new one. Concurrent callers for one key share one request and
// its result or error. With p.ahead, a token in the window with minAheadLife left is served
// at once and renewed behind the read. A token is returned only with minLife (at least
// minServableLife) left at the moment get returns.
func (c *tokenCache) get(ctx context.Context, s logical.Storage, key tokenKey, role string, minLife time.Duration, p *cachePolicy) (tokenResult, error) {
	minLife = max(minLife, minServableLife)
	now := c.now()
	ks := c.state(key)
	ks.markRead(now)
	ks.addRole(role)
	if tok := ks.token.Load(); tok != nil && tok.Credentials == p.credentials {
		// min_remaining_ttl is at most refreshWindow less the longest request, so a token
		// Naver would hand back has it; the check only keeps the promise unconditional.
		if tok.naverLife(now) >= refreshWindow && tok.life(now) >= minLife {
			return tokenResult{token: tok}, nil
		}
		if p.ahead && tok.life(now) >= max(minAheadLife, minLife) {
			// DoChan starts the flight (or joins the running one) without waiting for it.
			c.flights.DoChan(c.flightKey(ks), c.refresher(s, ks, p, true))
			return tokenResult{token: tok}, nil
		}
	}
	v, err, _ := c.flights.Do(c.flightKey(ks), c.refresher(s, ks, p, false))
	if err != nil {
		return tokenResult{}, err
	}
	res := v.(tokenResult)
	// The flight may have taken a while, or been joined late: judge the token now.
	if left := res.token.life(c.now()); left < minLife {
		if res.renewErr != nil && left < minServableLife {
			return tokenResult{}, res.renewErr
		}
		if res.renewErr != nil {
			return tokenResult{}, fmt.Errorf("the token has only %s left, less than the role's %s, and renewing it failed: %w", left.Round(time.Second), fieldMinRemainingTTL, res.renewErr)
		}
		return tokenResult{}, fmt.Errorf("the token has only %s left", left.Round(time.Second))
	}
	return res, nil
}

// flightKey includes the generation so no caller joins a request made with old credentials.
func (c *tokenCache) flightKey(ks *keyState) string {
	return strconv.FormatUint(ks.gen, 10) + "|" + ks.key.String()
}

func (c *tokenCache) refresher(s logical.Storage, ks *keyState, p *cachePolicy, background bool) func() (any, error) {
	return func() (any, error) {
		res, err := c.refresh(c.ctx, s, ks, p)
		if background {
			// A failure with the cached token still servable comes back as renewErr.
			switch {
			case res.fetched:
				c.metrics.backgroundRenewal(nil)
			case err != nil:
				c.metrics.backgroundRenewal(err)
			case res.renewErr != nil && !res.backingOff:
				c.metrics.backgroundRenewal(res.renewErr)
			}
		}
		return res, err
	}
}

// refresh runs once per key at a time.
func (c *tokenCache) refresh(ctx context.Context, s logical.Storage, ks *keyState, p *cachePolicy) (tokenResult, error) {
	key := ks.key
	now := c.now()
	current := ks.token.Load()
	if current != nil && current.Credentials != p.credentials {
		current = nil
	}
	if current == nil {
		if stored, err := c.load(ctx, s, key); err != nil {
			c.logger.Warn("reading cached token from storage failed; asking Naver", "type", key.Type, "error", err)
		} else if stored != nil && stored.Credentials == p.credentials && stored.life(now) > 0 {
			current = stored
			c.publishMemory(ks, stored)
		}
	}
	if current != nil && current.naverLife(now) >= refreshWindow {
		return tokenResult{token: current}, nil
	}
	servable := current != nil && current.life(now) >= minServableLife

	ks.mu.Lock()
	backoffUntil, backoffErr, notBefore := ks.backoffUntil, ks.backoffErr, ks.notBefore
	if ks.failedWith != p.credentials {
		// A failure of other credentials (a request made just before they changed) owes
		// these no back-off.
		backoffUntil = time.Time{}
	}
	ks.mu.Unlock()
	if servable && (now.Sub(current.FetchedAt) < minRefetchInterval || now.Before(notBefore)) {
		return tokenResult{token: current}, nil
	}
	if now.Before(backoffUntil) {
		// Naver just failed for this key: do not ask again before it may succeed.
		if servable {
			return tokenResult{token: current, renewErr: backoffErr, backingOff: true}, nil
		}
		return tokenResult{}, backoffErr
	}

	tok, err := c.fetch(ctx, key, p)
	if err != nil {
		c.recordFailure(ks, p.credentials, err)
		// The request may have taken until the token's last seconds: judge it again.
		if current != nil && current.life(c.now()) >= minServableLife {
			c.logger.Warn("renewing token failed; serving the cached one until it expires", "type", key.Type, "expires_at", current.ExpiresAt, "error", err)
			return tokenResult{token: current, renewErr: err}, nil
		}
		return tokenResult{}, err
	}

	fetched := &cachedToken{accessToken: tok, Key: key, Credentials: p.credentials, FetchedAt: now}
	c.boundHandedBack(ks, current, fetched)
	c.recordSuccess(ks)
	if left := fetched.life(c.now()); left < minServableLife {
		return tokenResult{}, fmt.Errorf("naver issued a token with only %s left", left.Round(time.Second))
	}
	if err := c.publish(ctx, s, ks, fetched); err != nil {
		// The token is good; only the copy for restarts is missing.
		c.logger.Warn("storing token failed; it is cached in memory only", "type", key.Type, "error", err)
	}
	return tokenResult{token: fetched, fetched: true}, nil
}
