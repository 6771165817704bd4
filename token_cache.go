package navercommerce

// Serving tokens: the cache of one token per key, the read path, and the single flight
// that lets one request per key reach Naver. What is known about tokens lives in
// token_facts.go, budgets and back-off in token_budget.go, periodic work in
// token_maintenance.go.

import (
	"context"
	"fmt"
	"hash/maphash"
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
	// renewSpreadWidth: keys renew at a stable point of Naver's window up to this far in,
	// always with renewMinLife or more left.
	renewSpreadWidth = 20 * time.Minute
	renewMinLife     = 10 * time.Minute
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

	// Back-off after failed requests, for reads: failureBackoff (rateLimitBackoff after a 429),
	// doubled per consecutive failure, at most maxBackoff; Naver's Retry-After if longer.
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

	// tokenLifetime is how long Naver's tokens live: a key read within it is in use.
	tokenLifetime = 3 * time.Hour

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
	appPerHour  int    // max token requests of the application per hour; 0: automatic
	// timeout bounds one request, retries included: a probe holds the breaker that long.
	timeout time.Duration
	fetch   fetchFunc
}

// keyState is everything the cache knows of one key in one credentials generation.
type keyState struct {
	key tokenKey
	gen uint64

	spreadHash uint64 // key.spreadHash(), computed once
	// token is the token served, nil when none is (see cachedToken.servable).
	token atomic.Pointer[cachedToken]
	// fact is what is known of the key's latest token: the served token itself, or the fact
	// of one no longer served (dropped, unusable, of other credentials), also kept in storage
	// until it expires. Whatever Naver answers is bounded by it.
	fact atomic.Pointer[cachedToken]
	// entryMu orders loading the stored entry and publishing it against drops: a token an
	// operator dropped is never published back from a load that started before the drop.
	entryMu sync.Mutex
	// unstored is set while the token in memory could not be stored.
	unstored atomic.Bool
	// minLife (nanoseconds) is the most min_remaining_ttl of the roles read through the key
	// since it was cached: its token is renewed before it has less left.
	minLife atomic.Int64
	// lastRead (Unix nanoseconds) tells background refresh whether anyone uses the key.
	lastRead atomic.Int64
	// roles are the names of the roles read through the key (copied on write), or found to
	// name it by the periodic run's check: hints, not facts, as a role may have changed
	// since. Unless checkRoles is set, one of them names the key (see roleChanged).
	roles atomic.Pointer[map[string]struct{}]

	mu             sync.Mutex
	failures       int           // consecutive failed requests
	failedWith     string        // credentials of the failures: back-offs bind only them
	lastFailure    *renewFailure // nil after a success; reads share it during the back-off
	backoffUntil   time.Time     // reads do not ask Naver before
	nextBackground time.Time     // background renewal does not ask Naver before
	notBefore      time.Time     // Naver handed back the same token: do not ask before
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
	apps     sync.Map // client ID → *appGuard
	// spreadWidth is how far into Naver's window renewals spread (renewSpreadWidth; 0 in
	// tests of the window's start).
	spreadWidth time.Duration
	// swept is set once storage was swept after the start (see ensureSwept).
	swept atomic.Bool
	// spread is the spread in force: the config's renewal_spread within spreadWidth.
	spread atomic.Int64
	// keysInUse counts keys read within a token's life, for the automatic application
	// budget: raised as keys appear, recounted by each periodic run.
	keysInUse atomic.Int64
	flights   singleflight.Group
	// background counts renewals running behind reads (see Backend.WaitIdle).
	background flightTracker
	// storing counts tokens being stored after the read that fetched them answered (see
	// publish); started under mu's read lock, so whatever holds the write lock may wait
	// for them.
	storing flightTracker
	// generation changes whenever the credentials do, so results of requests made with old
	// credentials — tokens and failures alike — are never published.
	generation atomic.Uint64
	// roleChanges counts role writes, deletes and invalidations (see roleChanged): a read
	// whose role changed while it ran leaves its key to the periodic run's check.
	roleChanges atomic.Uint64
	// unnamedPending holds the keys (tokenKey) a role write's check evicted: the next periodic
	// run marks their stored tokens unnamed.
	unnamedPending sync.Map
	// mu orders publishing (read lock) against purging (write lock).
	mu sync.RWMutex
	// credentials are those of the config in use (see useCredentials); under mu.
	credentials string
	// lastSweep is when storage was last swept of stale tokens; under mu.
	lastSweep time.Time
	// sweptSums remembers, by storage key, a hash of each entry the last sweep decoded and the
	// entry's known expiry; under sweptMu.
	sweptMu   sync.Mutex
	sweptSums map[string]sweptEntry
	sweptSeed maphash.Seed
}

type sweptEntry struct {
	sum        uint64
	knownUntil time.Time
}

func newTokenCache(now func() time.Time, logger hclog.Logger) *tokenCache {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &tokenCache{now: now, logger: logger, ctx: ctx, cancel: cancel, spreadWidth: renewSpreadWidth}
	c.spread.Store(int64(renewSpreadWidth))
	return c
}

// close stops requests in flight once the tokens being stored are stored; the mount is
// going away (a plugin reload, a seal, a leader change, an unmount).
func (c *tokenCache) close() {
	c.storing.wait()
	c.cancel()
}

// state returns the key's state in the current generation, creating it.
func (c *tokenCache) state(key tokenKey) *keyState {
	if v, ok := c.entries.Load(key); ok {
		return v.(*keyState)
	}
	ks := &keyState{key: key, gen: c.generation.Load(), spreadHash: key.spreadHash()}
	v, loaded := c.entries.LoadOrStore(key, ks)
	if !loaded {
		c.keysInUse.Add(1)
	}
	return v.(*keyState)
}

// tokenResult is what one flight hands to every caller waiting on it.
type tokenResult struct {
	token *cachedToken
	// fetched is set when the token came from a request made for this flight.
	fetched bool
	// renewErr is set when renewing failed (or was not allowed) but the cached token still
	// had life to serve.
	renewErr *renewFailure
	// backingOff is set when renewErr is an earlier failure shared during its back-off:
	// nothing was asked this time.
	backingOff bool
}

func (r tokenResult) warning() string {
	switch {
	case r.renewErr == nil:
		return ""
	case r.renewErr.Replayed:
		return fmt.Sprintf("renewing this token failed at %s (%v); Naver is not asked again before %s; serving the cached token until it expires at %s",
			r.renewErr.At.UTC().Format(time.RFC3339), r.renewErr.Err, r.renewErr.RetryAt.UTC().Format(time.RFC3339), r.token.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("renewing this token failed (%v); serving the cached token until it expires at %s", r.renewErr.Err, r.token.ExpiresAt.UTC().Format(time.RFC3339))
}

// renewFailure is a key's last failed request (or one its budget refused), as reads see it.
type renewFailure struct {
	Err error
	At  time.Time
	// Replayed is set when a read shares the failure during its back-off, which ends at
	// RetryAt: nothing was asked for that read.
	Replayed bool
	RetryAt  time.Time
}

func (f *renewFailure) Error() string {
	if f.Replayed {
		return fmt.Sprintf("not asking Naver again before %s: the request at %s failed: %v",
			f.RetryAt.UTC().Format(time.RFC3339), f.At.UTC().Format(time.RFC3339), f.Err)
	}
	return f.Err.Error()
}

func (f *renewFailure) Unwrap() error { return f.Err }

// get returns the key's token for a read through role, asking Naver through p.fetch only
// when Naver would issue a new one. Concurrent callers for one key share one request and
// its result or error. With p.ahead, a token in the window with minAheadLife left is served
// at once and renewed behind the read. A token is returned only with minLife (at least
// minServableLife) left at the moment get returns.
//
// roleChanges is c.roleChanges before the role was read: if a role changed since, the
// role may no longer name the key, and the periodic run checks that one still does.
func (c *tokenCache) get(ctx context.Context, s logical.Storage, key tokenKey, role string, roleChanges uint64, minLife time.Duration, p *cachePolicy) (res tokenResult, err error) {
	minLife = max(minLife, minServableLife)
	now := c.now()
	ks := c.state(key)
	ks.noteMinLife(minLife)
	ks.markRead(now)
	ks.addRole(role)
	// Deferred: a token published by this read, or behind it, after a role change is
	// checked too.
	defer c.checkIfRolesChanged(ks, roleChanges)
	if tok := ks.token.Load(); tok.servable(p.credentials) {
		if !c.isDue(ks, tok, now) {
			return tokenResult{token: tok}, nil
		}
		if p.ahead && tok.life(now) >= max(minAheadLife, minLife) {
			// DoChan starts the flight (or joins the running one) without waiting for it.
			c.background.track(c.flights.DoChan(c.flightKey(ks), c.refresher(s, ks, p, true)))
			// The renewal behind the read has not ended yet: report the last one's failure.
			ks.mu.Lock()
			failure := ks.failureFor(p.credentials)
			ks.mu.Unlock()
			return tokenResult{token: tok, renewErr: failure}, nil
		}
	}
	v, err, _ := c.flights.Do(c.flightKey(ks), c.refresher(s, ks, p, false))
	if err != nil {
		return tokenResult{}, err
	}
	res = v.(tokenResult)
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

// checkIfRolesChanged marks ks for the periodic run's check if a role changed since
// roleChanges, the count taken before the role a read or drop went through was read: that
// role may no longer name the key, while the token is in memory again.
func (c *tokenCache) checkIfRolesChanged(ks *keyState, roleChanges uint64) {
	if c.roleChanges.Load() != roleChanges {
		ks.mu.Lock()
		ks.checkRoles = true
		ks.mu.Unlock()
	}
}

// recoverySpreadPoint is when a key that failed in a storm renews its still-servable token
// once Naver is back for the application: at a point stable for the key within the
// renewal spread in force after the recovery, with minAheadLife (or the life a role
// reading it asks for) still left at that point. Not renewMinLife: a long storm has taken
// that margin from many tokens already, and keeping it would leave them in one burst.
// Zero or past: at once (Naver never came back, renewal_spread is 0, or the token has no
// time to spare; below minAheadLife reads wait for the renewal). The point is the key's
// point of the window's spread, scaled: keys that renew early after the recovery renew
// early in their next token's window too, so tokens fetched after an outage spread further.
func (c *tokenCache) recoverySpreadPoint(ks *keyState, tok *cachedToken) time.Time {
	// Not "recovered after the failure": a breaker refusal may be recorded at the instant of
	// the recovery, or just after it, by a renewal that checked the breaker before the probe
	// succeeded. A recovery long past puts the point in the past.
	recoveredAt := c.app(ks.key.ClientID).lastRecovery()
	if recoveredAt.IsZero() {
		return time.Time{}
	}
	margin := max(minAheadLife, time.Duration(ks.minLife.Load()))
	width := min(c.spreadNow(), tok.life(recoveredAt)-margin)
	if width <= 0 || c.spreadWidth <= 0 {
		return time.Time{}
	}
	// The key's point of the window's spread, scaled to width.
	return recoveredAt.Add(time.Duration(float64(width) * float64(ks.key.renewSpread(c.spreadWidth)) / float64(c.spreadWidth)))
}

// noteMinLife raises the least life the key's token must keep to d.
func (ks *keyState) noteMinLife(d time.Duration) {
	for {
		old := ks.minLife.Load()
		if int64(d) <= old || ks.minLife.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// isDue reports whether the key's token is to be renewed at now: past its point in Naver's
// window, or with less life than a role reading it asks for (min_remaining_ttl is below 30
// minutes, so Naver then issues a new token).
func (c *tokenCache) isDue(ks *keyState, tok *cachedToken, now time.Time) bool {
	// The key's hash is kept in its state: the periodic run asks this of every key every minute.
	return now.After(tok.renewAtOffset(spreadOffset(ks.spreadHash, c.spreadNow()))) || tok.life(now) < time.Duration(ks.minLife.Load())
}

// spreadNow is the renewal spread in force.
func (c *tokenCache) spreadNow() time.Duration { return time.Duration(c.spread.Load()) }

// flightKey includes the generation so no caller joins a request made with old credentials.
func (c *tokenCache) flightKey(ks *keyState) string {
	return strconv.FormatUint(ks.gen, 10) + "|" + ks.key.String()
}

func (c *tokenCache) refresher(s logical.Storage, ks *keyState, p *cachePolicy, background bool) func() (any, error) {
	return func() (any, error) {
		res, err := c.refresh(c.ctx, s, ks, p, background)
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
func (c *tokenCache) refresh(ctx context.Context, s logical.Storage, ks *keyState, p *cachePolicy, background bool) (tokenResult, error) {
	key := ks.key
	current := ks.token.Load()
	if !current.servable(p.credentials) {
		var err error
		if current, err = c.loadStored(ctx, s, ks, p.credentials); err != nil {
			// Asking Naver without what storage knows of the token could be a needless
			// request, or serve a handed-back token past its death.
			return tokenResult{}, fmt.Errorf("reading the cached token from storage: %w", err)
		}
	}
	now := c.now()
	if current != nil && !c.isDue(ks, current, now) {
		return tokenResult{token: current}, nil
	}
	servable := current != nil && current.life(now) >= minServableLife

	ks.mu.Lock()
	backoffUntil, notBefore, failure := ks.backoffUntil, ks.notBefore, ks.failureFor(p.credentials)
	ks.mu.Unlock()
	if failure == nil {
		// A failure of other credentials (a request made just before they changed) owes
		// these no back-off.
		backoffUntil = time.Time{}
	}
	if servable && (now.Sub(current.FetchedAt) < minRefetchInterval || now.Before(notBefore)) {
		return tokenResult{token: current, renewErr: failure}, nil
	}
	if servable && failure != nil && now.Before(c.recoverySpreadPoint(ks, current)) {
		// Naver is back, and this token has time to spare: its renewal waits for its point
		// in the recovery's spread, so that the keys that failed in the storm do not all
		// ask in the minute Naver comes back.
		return tokenResult{token: current, renewErr: failure, backingOff: true}, nil
	}
	recovered := failure != nil && now.Before(backoffUntil) && c.naverBackFor(ks.key, p.perHour, failure, now)
	if now.Before(backoffUntil) && !recovered {
		// Naver just failed for this key: do not ask again before it may succeed.
		replay := &renewFailure{Err: failure.Err, At: failure.At, Replayed: true, RetryAt: backoffUntil}
		if servable {
			return tokenResult{token: current, renewErr: replay, backingOff: true}, nil
		}
		return tokenResult{}, replay
	}

	fetched, err := c.fetch(ctx, s, ks, p, background, recovered)
	// An unservable answer is remembered, but never over a token still servable.
	if fetched != nil && (fetched.Retired == "" || current == nil) {
		// A read waiting on this token is answered while it is stored (see publish);
		// background renewals have no one waiting and store it first.
		behind := !background && err == nil
		if perr := c.publish(ctx, s, ks, fetched, behind); perr != nil {
			// The token (or what is known of it) is good; only the copy for restarts is missing.
			c.logger.Warn("storing token failed; it is cached in memory only", "type", key.Type, "error", perr)
		}
	}
	if err != nil {
		failure := c.recordFailure(ks, p.credentials, p.perHour, err)
		// The request may have taken until the token's last seconds: judge it again. A
		// token dropped meanwhile is not served.
		if current != nil && current.life(c.now()) >= minServableLife && ks.token.Load() == current {
			c.logger.Warn("renewing token failed; serving the cached one until it expires", "type", key.Type, "expires_at", current.ExpiresAt, "error", err)
			return tokenResult{token: current, renewErr: failure}, nil
		}
		return tokenResult{}, err
	}
	c.recordSuccess(ks)
	return tokenResult{token: fetched, fetched: true}, nil
}
