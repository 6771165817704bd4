package navercommerce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
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

// tokenKey identifies a token at Naver: roles naming the same account share it.
type tokenKey struct {
	ClientID  string `json:"client_id"`
	Type      string `json:"type"`
	AccountID string `json:"account_id,omitempty"`
}

func (k tokenKey) String() string {
	return k.ClientID + "|" + k.Type + "|" + k.AccountID
}

// storageKey names the key's storage entry without putting identifiers in a path.
func (k tokenKey) storageKey() string {
	sum := sha256.Sum256([]byte(k.String()))
	return tokenStoragePrefix + hex.EncodeToString(sum[:16])
}

// cachedToken is a token with what the cache needs to know about it. Values are immutable
// once published, so readers need no lock.
type cachedToken struct {
	Format int `json:"format,omitempty"` // see storage_format.go
	accessToken
	Key tokenKey `json:"key"`
	// Credentials ties the token to the config it was fetched with (see credentialsID).
	Credentials string `json:"credentials"`
	// FetchedAt is when the token was requested.
	FetchedAt time.Time `json:"fetched_at"`
}

// life is how long the token can still be used, as far as we can be sure.
func (t *cachedToken) life(now time.Time) time.Duration { return t.ExpiresAt.Sub(now) }

// naverLife is the most life Naver may think the token has: the 30-minute rule is judged on it.
func (t *cachedToken) naverLife(now time.Time) time.Duration {
	if t.LatestExpiry.IsZero() { // stored before the field existed
		return t.ExpiresAt.Sub(now)
	}
	return t.LatestExpiry.Sub(now)
}

// renewAt is when Naver will issue a new token for the key, and so when it is renewed.
func (t *cachedToken) renewAt() time.Time {
	if t.LatestExpiry.IsZero() {
		return t.ExpiresAt.Add(-refreshWindow)
	}
	return t.LatestExpiry.Add(-refreshWindow)
}

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

// requestLog remembers when a key asked Naver, for the hourly budget and status. It is kept
// across credential changes: Naver counts requests, whatever the cache forgot.
type requestLog struct {
	// sending holds one token while a request for the key is being sent.
	sending chan struct{}
	mu      sync.Mutex
	times   []time.Time // oldest first, at most a day
}

func (l *requestLog) record(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trimLocked(now)
	l.times = append(l.times, now)
}

func (l *requestLog) trimLocked(now time.Time) {
	i := 0
	for i < len(l.times) && now.Sub(l.times[i]) >= 24*time.Hour {
		i++
	}
	l.times = l.times[i:]
}

// since counts the requests in the last d, and returns the oldest of them.
func (l *requestLog) since(now time.Time, d time.Duration) (n int, oldest time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.times) - 1; i >= 0 && now.Sub(l.times[i]) < d; i-- {
		n++
		oldest = l.times[i]
	}
	return n, oldest
}

// budgetError is a request not sent because the key spent its hourly budget.
type budgetError struct {
	Limit     int
	NextAfter time.Time
}

func (e *budgetError) Error() string {
	return fmt.Sprintf("not asking Naver: this token has had %d requests in the last hour, the limit set by max_token_requests_per_hour; the next is allowed at %s",
		e.Limit, e.NextAfter.UTC().Format(time.RFC3339))
}

// requestBudget lets the Naver client count every HTTP attempt of one fetch, retries
// included, against the key's budget.
type requestBudget struct {
	log     *requestLog
	perHour int
	now     func() time.Time
}

// check reports why another attempt may not be sent, or nil.
func (rb *requestBudget) check() error {
	now := rb.now()
	n, oldest := rb.log.since(now, time.Hour)
	if rb.perHour > 0 && n >= rb.perHour {
		return &budgetError{Limit: rb.perHour, NextAfter: oldest.Add(time.Hour)}
	}
	return nil
}

func (rb *requestBudget) record() { rb.log.record(rb.now()) }

type requestBudgetKey struct{}

func withRequestBudget(ctx context.Context, rb *requestBudget) context.Context {
	return context.WithValue(ctx, requestBudgetKey{}, rb)
}

func requestBudgetFrom(ctx context.Context) *requestBudget {
	rb, _ := ctx.Value(requestBudgetKey{}).(*requestBudget)
	return rb
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

func (c *tokenCache) requestLog(key tokenKey) *requestLog {
	if v, ok := c.requests.Load(key); ok {
		return v.(*requestLog)
	}
	v, _ := c.requests.LoadOrStore(key, &requestLog{sending: make(chan struct{}, 1)})
	return v.(*requestLog)
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
// at once and renewed behind the read. A token is returned only with minServableLife left
// at the moment get returns.
func (c *tokenCache) get(ctx context.Context, s logical.Storage, key tokenKey, role string, p *cachePolicy) (tokenResult, error) {
	now := c.now()
	ks := c.state(key)
	ks.markRead(now)
	ks.addRole(role)
	if tok := ks.token.Load(); tok != nil && tok.Credentials == p.credentials {
		if tok.naverLife(now) >= refreshWindow {
			return tokenResult{token: tok}, nil
		}
		if p.ahead && tok.life(now) >= minAheadLife {
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
	if left := res.token.life(c.now()); left < minServableLife {
		if res.renewErr != nil {
			return tokenResult{}, res.renewErr
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

// boundHandedBack: if Naver handed back the token already known (cached, or dropped by an
// operator), it thinks 30 minutes or more are left. Its answer never extends what is known
// of the token's life, and the key does not ask again for a while.
func (c *tokenCache) boundHandedBack(ks *keyState, known, fetched *cachedToken) {
	if known == nil || known.Credentials != fetched.Credentials {
		known = ks.dropped.Load()
	}
	if known == nil || known.Credentials != fetched.Credentials || known.AccessToken != fetched.AccessToken {
		return
	}
	if known.ExpiresAt.Before(fetched.ExpiresAt) {
		fetched.ExpiresAt = known.ExpiresAt
	}
	if !known.LatestExpiry.IsZero() && known.LatestExpiry.Before(fetched.LatestExpiry) {
		fetched.LatestExpiry = known.LatestExpiry
	}
	c.logger.Warn("naver handed back the cached token; not asking again for a while", "type", ks.key.Type, "retry_after", sameTokenPause)
	ks.mu.Lock()
	ks.notBefore = c.now().Add(sameTokenPause)
	ks.mu.Unlock()
}

// fetch asks Naver within the key's hourly budget: every HTTP attempt counts. One request
// per key is sent at a time, whatever the credentials generation: Naver penalises
// concurrent requests, and a request made just before a credential change may still be
// running.
func (c *tokenCache) fetch(ctx context.Context, key tokenKey, p *cachePolicy) (accessToken, error) {
	log := c.requestLog(key)
	select {
	case log.sending <- struct{}{}:
		defer func() { <-log.sending }()
	case <-ctx.Done():
		return accessToken{}, &upstreamError{Err: fmt.Errorf("waiting for the request in flight for this token: %w", ctx.Err())}
	}
	rb := &requestBudget{log: log, perHour: p.perHour, now: c.now}
	if err := rb.check(); err != nil {
		c.metrics.budgetRefused()
		c.logger.Warn("token request refused by the hourly budget", "type", key.Type, "error", err)
		return accessToken{}, err
	}
	tok, err := p.fetch(withRequestBudget(ctx, rb), key)
	c.metrics.tokenRequested(err)
	return tok, err
}

func (c *tokenCache) recordFailure(ks *keyState, credentials string, err error) {
	now := c.now()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ke := &keyError{At: now, Message: err.Error()}
	var ue *upstreamError
	if errors.As(err, &ue) {
		ke.StatusCode, ke.Code, ke.TraceID = ue.StatusCode, ue.Code, ue.TraceID
	}
	ks.lastError = ke
	var be *budgetError
	if c.generation.Load() != ks.gen || errors.As(err, &be) {
		// Made with credentials that are gone: the new ones owe it no back-off. A budget
		// refusal sent nothing, and the budget check itself is the back-off.
		return
	}
	if ks.failedWith != credentials {
		ks.failures, ks.failedWith = 0, credentials
	}
	ks.failures++
	ks.backoffUntil = now.Add(readBackoff(err, ks.failures))
	ks.backoffErr = err
	ks.nextBackground = now.Add(doubling(backgroundBackoff, ks.failures, maxBackgroundBackoff))
}

func (c *tokenCache) recordSuccess(ks *keyState) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.failures = 0
	ks.backoffUntil, ks.backoffErr, ks.nextBackground = time.Time{}, nil, time.Time{}
}

// readBackoff is how long reads share a failure instead of asking Naver again.
func readBackoff(err error, failures int) time.Duration {
	base := failureBackoff
	var ue *upstreamError
	if errors.As(err, &ue) {
		switch {
		case ue.RetryAfter > 0:
			return min(ue.RetryAfter, maxBackoff)
		case ue.StatusCode == http.StatusTooManyRequests:
			base = rateLimitBackoff
		}
	}
	return doubling(base, failures, maxBackoff)
}

// doubling is base doubled for every failure after the first, at most ceiling.
func doubling(base time.Duration, failures int, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < failures && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// publishMemory makes tok the key's token in memory, unless the credentials changed.
func (c *tokenCache) publishMemory(ks *keyState, tok *cachedToken) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.generation.Load() == ks.gen {
		ks.token.Store(tok)
	}
}

// publish makes tok the key's token in memory and storage, unless the credentials changed
// while it was being fetched.
func (c *tokenCache) publish(ctx context.Context, s logical.Storage, ks *keyState, tok *cachedToken) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.generation.Load() != ks.gen {
		return nil
	}
	ks.token.Store(tok)
	stored := *tok
	stored.Format = tokenFormat
	entry, err := logical.StorageEntryJSON(tok.Key.storageKey(), &stored)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

func (c *tokenCache) load(ctx context.Context, s logical.Storage, key tokenKey) (*cachedToken, error) {
	entry, err := s.Get(ctx, key.storageKey())
	if err != nil || entry == nil {
		return nil, err
	}
	var tok cachedToken
	if err := decodeEntry(entry, "cached token", &tok); err != nil {
		return nil, err
	}
	if tok.Key != key {
		return nil, nil
	}
	return &tok, nil
}

// purge forgets every token, in memory and (when s is not nil) in storage: the credentials
// changed, and a token of other credentials must never be served. The request logs stay.
func (c *tokenCache) purge(ctx context.Context, s logical.Storage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation.Add(1)
	c.entries.Clear()
	if s == nil {
		return nil
	}
	keys, err := logical.CollectKeysWithPrefix(ctx, s, tokenStoragePrefix)
	if err != nil {
		return fmt.Errorf("listing cached tokens: %w", err)
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return fmt.Errorf("deleting cached token: %w", err)
		}
	}
	return nil
}

// drop forgets one key's token and failures, in memory and storage: the next read asks
// Naver (an operator knows the token is dead at Naver, e.g. after a seller re-authorised).
func (c *tokenCache) drop(ctx context.Context, s logical.Storage, key tokenKey) error {
	// After a restart the token may be in storage only: remember it all the same.
	stored, err := c.load(ctx, s, key)
	if err != nil {
		c.logger.Warn("reading the token to drop failed", "type", key.Type, "error", err)
	}
	ks := c.state(key)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if tok := ks.token.Swap(nil); tok != nil {
		ks.dropped.Store(tok)
	} else if stored != nil {
		ks.dropped.Store(stored)
	}
	ks.mu.Lock()
	ks.failures, ks.backoffUntil, ks.backoffErr, ks.nextBackground, ks.notBefore = 0, time.Time{}, nil, time.Time{}, time.Time{}
	ks.mu.Unlock()
	if err := s.Delete(ctx, key.storageKey()); err != nil {
		return fmt.Errorf("deleting cached token: %w", err)
	}
	return nil
}

// evict forgets a key no role names, or whose token expired, in memory and storage.
// seen is the token the decision was made on: if another has been published since (a read
// renewed it meanwhile), nothing is evicted. The write lock orders this against publish.
func (c *tokenCache) evict(ctx context.Context, s logical.Storage, ks *keyState, seen *cachedToken) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ks.token.Load() != seen {
		return nil
	}
	c.entries.CompareAndDelete(ks.key, ks)
	if c.generation.Load() != ks.gen {
		return nil
	}
	return s.Delete(ctx, ks.key.storageKey())
}

// evictKey forgets a key no role names any more, in memory and storage.
func (c *tokenCache) evictKey(ctx context.Context, s logical.Storage, key tokenKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries.Delete(key)
	return s.Delete(ctx, key.storageKey())
}

// sweepStorage deletes stored tokens that expired or belong to other credentials: keys
// not in memory (since a restart) are otherwise never looked at.
func (c *tokenCache) sweepStorage(ctx context.Context, s logical.Storage, credentials string) {
	keys, err := logical.CollectKeysWithPrefix(ctx, s, tokenStoragePrefix)
	if err != nil {
		c.logger.Warn("listing cached tokens failed", "error", err)
		return
	}
	now := c.now()
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		entry, err := s.Get(ctx, k)
		if err != nil || entry == nil {
			continue
		}
		var tok cachedToken
		if err := decodeEntry(entry, "cached token", &tok); err == nil && tok.Credentials == credentials && tok.life(now) > 0 {
			// Known from the start, like a token read before the restart (status, metrics).
			if ks := c.state(tok.Key); ks.token.Load() == nil {
				stored := tok
				c.publishMemory(ks, &stored)
			}
			continue
		}
		c.mu.Lock()
		if v, ok := c.entries.Load(tok.Key); ok && v.(*keyState).token.Load() != nil && v.(*keyState).token.Load().life(now) > 0 {
			c.mu.Unlock()
			continue // renewed meanwhile
		}
		if err := s.Delete(ctx, k); err != nil {
			c.logger.Warn("deleting a stale cached token failed", "error", err)
		}
		c.mu.Unlock()
	}
}

// ensureSwept sweeps storage once after the plugin starts, so that what memory shows
// (metrics) includes the tokens stored before the restart.
func (c *tokenCache) ensureSwept(ctx context.Context, s logical.Storage, credentials string) {
	c.mu.RLock()
	swept := !c.lastSweep.IsZero()
	c.mu.RUnlock()
	if swept {
		return
	}
	c.sweepStorage(ctx, s, credentials)
	c.mu.Lock()
	c.lastSweep = c.now()
	c.mu.Unlock()
}

// forget drops the in-memory copy of the token stored under storageKey (another node wrote it).
func (c *tokenCache) forget(storageKey string) {
	c.entries.Range(func(k, v any) bool {
		if k.(tokenKey).storageKey() == storageKey {
			v.(*keyState).token.Store(nil)
			return false
		}
		return true
	})
}

// roleChanged notes that role no longer reads its key: the next periodic run checks whether
// any role still names it, and evicts it if none does.
func (c *tokenCache) roleChanged(role string) {
	c.entries.Range(func(_, v any) bool {
		ks := v.(*keyState)
		if ks.removeRole(role) {
			ks.mu.Lock()
			ks.checkRoles = true
			ks.mu.Unlock()
		}
		return true
	})
}

// seed publishes a token fetched outside get (the SELF token that verified a new config).
func (c *tokenCache) seed(ctx context.Context, s logical.Storage, tok *cachedToken) error {
	ks := c.state(tok.Key)
	c.boundHandedBack(ks, ks.token.Load(), tok)
	return c.publish(ctx, s, ks, tok)
}

// fresh reports whether the key holds a token of credentials (in memory or storage) that
// Naver would hand back: asking for it now would be a needless request.
func (c *tokenCache) fresh(ctx context.Context, s logical.Storage, key tokenKey, credentials string) bool {
	now := c.now()
	if v, ok := c.entries.Load(key); ok {
		if tok := v.(*keyState).token.Load(); tok != nil && tok.Credentials == credentials {
			return tok.naverLife(now) >= refreshWindow
		}
	}
	tok, err := c.load(ctx, s, key)
	return err == nil && tok != nil && tok.Credentials == credentials && tok.naverLife(now) >= refreshWindow
}

// useCredentials tells the cache which credentials are current; when they differ from
// the last ones, memory is dropped (storage was purged by the node that changed them).
// Invalidations with unchanged credentials keep what is cached and in flight.
func (c *tokenCache) useCredentials(credentials string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.credentials == credentials {
		return
	}
	if c.credentials != "" {
		c.generation.Add(1)
		c.entries.Clear()
	}
	c.credentials = credentials
}

// keyNamedFunc reports whether any role still names key (roles hints which to look at first).
type keyNamedFunc func(ctx context.Context, s logical.Storage, key tokenKey, roles []string) (bool, error)

// maintain is the periodic work: it evicts expired tokens and tokens no role names, and
// renews, concurrently and within ctx's deadline, the tokens in Naver's 30-minute window
// that were read within their lifetime. A key whose renewals fail is retried across runs
// with a doubling back-off of up to an hour. It returns how many tokens it renewed.
func (c *tokenCache) maintain(ctx context.Context, s logical.Storage, p *cachePolicy, named keyNamedFunc) (renewed int) {
	// Deadlines are wall-clock time, whatever clock the cache reckons tokens by.
	deadline := time.Now().Add(periodicBudget)
	if d, ok := ctx.Deadline(); ok && d.Add(-periodicMargin).Before(deadline) {
		deadline = d.Add(-periodicMargin)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	now := c.now()
	c.mu.RLock()
	sweep := c.lastSweep.IsZero() || now.Sub(c.lastSweep) >= storageSweepInterval
	c.mu.RUnlock()
	if sweep {
		c.sweepStorage(ctx, s, p.credentials)
		c.mu.Lock()
		c.lastSweep = now
		c.mu.Unlock()
	}
	var due, check []*keyState
	c.entries.Range(func(_, v any) bool {
		ks := v.(*keyState)
		tok := ks.token.Load()
		lastRead := time.Unix(0, ks.lastRead.Load())
		ks.mu.Lock()
		checkRoles, nextBackground := ks.checkRoles, ks.nextBackground
		ks.mu.Unlock()
		switch {
		case tok == nil:
			if now.Sub(lastRead) > idleKeyLifetime {
				c.entries.CompareAndDelete(ks.key, ks)
			}
		case tok.life(now) <= 0:
			if err := c.evict(ctx, s, ks, tok); err != nil {
				c.logger.Warn("evicting an expired token failed", "type", ks.key.Type, "error", err)
			}
		case checkRoles:
			check = append(check, ks)
		}
		if tok != nil && tok.Credentials == p.credentials && p.ahead &&
			tok.naverLife(now) < refreshWindow && tok.life(now) > 0 &&
			now.Sub(lastRead) < tok.ExpiresAt.Sub(tok.FetchedAt) &&
			!now.Before(nextBackground) {
			due = append(due, ks)
		}
		return true
	})

	for _, ks := range check {
		ok, err := named(ctx, s, ks.key, ks.roleNames())
		if err != nil {
			c.logger.Warn("checking which roles name a token failed", "type", ks.key.Type, "error", err)
			continue
		}
		ks.mu.Lock()
		ks.checkRoles = false
		ks.mu.Unlock()
		if !ok {
			if err := c.evict(ctx, s, ks, ks.token.Load()); err != nil {
				c.logger.Warn("evicting the token of a deleted role failed", "type", ks.key.Type, "error", err)
			}
		}
	}

	sem := make(chan struct{}, renewConcurrency)
	var wg sync.WaitGroup
	var count atomic.Int64
loop:
	for _, ks := range due {
		// A key no role names any more is not renewed: its token is evicted instead.
		if ok, err := named(ctx, s, ks.key, ks.roleNames()); err != nil {
			c.logger.Warn("checking which roles name a token failed", "type", ks.key.Type, "error", err)
			continue
		} else if !ok {
			if err := c.evict(ctx, s, ks, ks.token.Load()); err != nil {
				c.logger.Warn("evicting the token of a deleted role failed", "type", ks.key.Type, "error", err)
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		ch := c.flights.DoChan(c.flightKey(ks), c.refresher(s, ks, p, true))
		wg.Add(1)
		go func(ks *keyState) {
			defer wg.Done()
			defer func() { <-sem }()
			select {
			case r := <-ch:
				if r.Err != nil {
					c.logger.Warn("background refresh failed", "type", ks.key.Type, "error", r.Err)
				} else if r.Val.(tokenResult).fetched {
					count.Add(1)
				}
			case <-ctx.Done():
				// The request goes on behind us, bounded by request_timeout; Vault's
				// periodic call must not wait for it.
			}
		}(ks)
	}
	wg.Wait()
	return int(count.Load())
}

// credentialsID fingerprints what a token depends on, so a stored token from other
// credentials is recognised after a restart. It is a one-way hash: the secret cannot be
// recovered from it.
func credentialsID(clientID, secretPrefix, baseURL string) string {
	sum := sha256.Sum256([]byte("navercommerce-token-cache\x00" + clientID + "\x00" + secretPrefix + "\x00" + baseURL))
	return hex.EncodeToString(sum[:16])
}

// keyStatus is what status reports of one key: never the token itself.
type keyStatus struct {
	Key   tokenKey
	Roles []string // roles read through the key since the plugin started, sorted
	// FetchedAt, ExpiresAt and RenewAt are zero when the key holds no token.
	FetchedAt time.Time
	ExpiresAt time.Time
	RenewAt   time.Time // when Naver will issue a new token, so when it is renewed
	LastRead  time.Time // zero: not read since the plugin started
	// Requests1h and Requests24h count HTTP requests to Naver, retries included.
	Requests1h   int
	Requests24h  int
	LastError    *keyError // nil: none since the plugin started
	BackoffUntil time.Time // reads do not ask Naver before this
	// NextBackground is when background renewal may ask Naver next, after failures.
	NextBackground time.Time
	Failures       int // consecutive failed requests
}

// status reports every key of the current credentials generation, sorted by key.
func (c *tokenCache) status(now time.Time, credentials string) []keyStatus {
	var out []keyStatus
	c.entries.Range(func(_, v any) bool {
		ks := v.(*keyState)
		st := keyStatus{Key: ks.key, Roles: ks.roleNames()}
		sort.Strings(st.Roles)
		if tok := ks.token.Load(); tok != nil && tok.Credentials == credentials {
			st.FetchedAt, st.ExpiresAt, st.RenewAt = tok.FetchedAt, tok.ExpiresAt, tok.renewAt()
		}
		if n := ks.lastRead.Load(); n != 0 {
			st.LastRead = time.Unix(0, n)
		}
		log := c.requestLog(ks.key)
		st.Requests1h, _ = log.since(now, time.Hour)
		st.Requests24h, _ = log.since(now, 24*time.Hour)
		ks.mu.Lock()
		if ks.lastError != nil {
			e := *ks.lastError
			st.LastError = &e
		}
		st.BackoffUntil, st.NextBackground, st.Failures = ks.backoffUntil, ks.nextBackground, ks.failures
		ks.mu.Unlock()
		out = append(out, st)
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}
