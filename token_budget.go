package navercommerce

// What a key may ask of Naver: the request log behind the hourly budget, the budget
// itself, the pacing of a failing key's requests over the hour, and the back-off after
// failed requests.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// requestLog remembers when a key asked Naver, for the hourly budget and status. It is kept
// across credential changes: Naver counts requests, whatever the cache forgot.
type requestLog struct {
	// sending holds one token while a request for the key is being sent.
	sending chan struct{}
	mu      sync.Mutex
	times   []time.Time // oldest first, at most a day
	// paceAt is the pacing's theoretical arrival time (GCRA): a paced attempt may go once
	// paceAt is at most (burst-1) intervals ahead of now.
	paceAt time.Time
	// paceInterval is the pacing interval paceAt was reckoned in (see rescaleLocked).
	paceInterval time.Duration
}

// rescaleLocked keeps what the key owes the pace in attempts when the interval changes (an
// operator changed max_token_requests_per_hour): reckoned in time, a debt run up at one
// request an hour would hold a key raised to twelve an hour for hours (make sim, seed 819).
func (l *requestLog) rescaleLocked(now time.Time, interval time.Duration) {
	if l.paceInterval == interval {
		return
	}
	if l.paceInterval > 0 && l.paceAt.After(now) {
		owed := float64(l.paceAt.Sub(now)) / float64(l.paceInterval)
		l.paceAt = now.Add(time.Duration(owed * float64(interval)))
	}
	l.paceInterval = interval
}

const (
	// paceBurst attempts a key may send at once (a read and its default 2 retries); after
	// them, while Naver fails, one per pacing interval. See pacing.
	paceBurst = 3
)

// pacing is how a key's budget of perHour requests is spread while Naver fails for it: a
// burst of up to paceBurst, then one attempt per interval, the interval leaving the burst
// room in every hour, so the pace alone never spends the hourly budget and a storm of any
// length leaves the key a request within one interval of Naver's recovery.
func pacing(perHour int) (burst int, interval time.Duration) {
	burst = max(min(paceBurst, perHour), 1)
	return burst, time.Hour / time.Duration(max(perHour-burst, 1))
}

// record notes an attempt sent at now. failing: it was sent while the key (or the
// application) was failing.
func (l *requestLog) record(now time.Time, perHour int, failing bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trimLocked(now)
	l.times = append(l.times, now)
	if perHour <= 0 {
		return
	}
	// Every attempt takes its place in the pace. One sent while Naver was healthy (drops,
	// verifications, a read and its retries) empties the burst but owes no more than an
	// empty one; one sent while failing, ahead of the pace (after Naver came back), is
	// owed: the next paced attempt waits for it.
	burst, interval := pacing(perHour)
	l.rescaleLocked(now, interval)
	l.paceAt = latest(l.paceAt, now).Add(interval)
	if !failing {
		l.paceAt = earliest(l.paceAt, now.Add(time.Duration(burst)*interval))
	}
}

// nextPaced is when the pace lets the key's next attempt go (at or before now: at once).
// Besides the interval, a paced attempt never takes the last request of the key's hour
// (as the pace alone never does): attempts sent while Naver was healthy, just before a
// storm, count in the hour though the pace forgives them, and a storm must not spend the
// budget.
func (l *requestLog) nextPaced(now time.Time, perHour int) time.Time {
	if perHour <= 0 {
		return time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	burst, interval := pacing(perHour)
	l.rescaleLocked(now, interval)
	next := l.paceAt.Add(-time.Duration(burst-1) * interval)
	// The attempts of the last hour, oldest first: the pace waits until fewer than
	// perHour−1 remain in it (a budget no larger than the burst is the burst).
	first := len(l.times)
	for first > 0 && now.Sub(l.times[first-1]) < time.Hour {
		first--
	}
	inHour, room := len(l.times)-first, max(perHour-1, burst)
	if inHour >= room {
		next = latest(next, l.times[first+inHour-room].Add(time.Hour))
	}
	return next
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

// budgetError is a request not sent because the key spent its hourly budget, or (Paced)
// because its requests are spread over the hour while Naver fails for it.
type budgetError struct {
	Limit     int
	NextAfter time.Time
	Paced     bool
}

func (e *budgetError) Error() string {
	if e.Paced {
		burst, interval := pacing(e.Limit)
		return fmt.Sprintf("not asking Naver before %s: Naver is failing, and meanwhile a token's requests are spread over the hour (max_token_requests_per_hour %d: %d at once, then one every %s)",
			e.NextAfter.UTC().Format(time.RFC3339), e.Limit, burst, interval.Round(time.Second))
	}
	return fmt.Sprintf("not asking Naver: this token has had %d requests in the last hour, the limit set by max_token_requests_per_hour; the next is allowed at %s",
		e.Limit, e.NextAfter.UTC().Format(time.RFC3339))
}

// requestBudget lets the Naver client count every HTTP attempt of one fetch, retries
// included, against the key's budget and the application's.
type requestBudget struct {
	log     *requestLog
	perHour int
	now     func() time.Time

	app        *appGuard
	appPerHour int  // for this request: background renewals get only their share
	keysInUse  int  // when the request was made, for the automatic budget (appGuard.keys)
	background bool // for the refusal's text
	single     bool // no retries: Naver was failing
	unpaced    bool // Naver came back since the key failed: its first attempt skips the pace
	attempts   int
	// countedAhead: the first attempt was counted before it was signed (recordAhead).
	countedAhead bool
	// ctx and storage keep the application's counts across restarts; storeErr is the
	// last failure to do so.
	ctx      context.Context
	storage  logical.Storage
	storeErr error
}

// errNoRetry stops retries of a request sent while Naver was failing.
var errNoRetry = errors.New("no retries while Naver is failing")

// check reports why another attempt may not be sent, or nil.
func (rb *requestBudget) check() error {
	now := rb.now()
	n, oldest := rb.log.since(now, time.Hour)
	if rb.perHour > 0 && n >= rb.perHour {
		return &budgetError{Limit: rb.perHour, NextAfter: oldest.Add(time.Hour)}
	}
	if rb.app != nil && rb.appPerHour != 0 {
		rb.app.mu.Lock()
		n, oldest := rb.app.lastHourLocked(now)
		rb.app.mu.Unlock()
		if limit := max(rb.appPerHour, 0); n >= limit {
			return &appBudgetError{Limit: limit, Background: rb.background, NextAfter: oldest.Add(appWindow)}
		}
	}
	if rb.single && rb.attempts > 0 {
		return errNoRetry
	}
	// A request while Naver fails keeps to the pace: a storm must not spend the hour's
	// budget in its first minutes. The retries of a request that began with Naver healthy
	// do not wait for it: max_retries bounds them, they are for a blip, and the key is
	// failing (single, paced) from its next request on.
	if rb.single && !(rb.unpaced && rb.attempts == 0) {
		if next := rb.log.nextPaced(now, rb.perHour); now.Before(next) {
			return &budgetError{Limit: rb.perHour, NextAfter: next, Paced: true}
		}
	}
	return nil
}

// record counts an attempt about to be sent, in memory and in storage, unless
// recordAhead or recordRetry did.
func (rb *requestBudget) record() {
	if rb.countedAhead {
		rb.countedAhead = false
		return
	}
	if n, reserved := rb.count(); !reserved {
		rb.storeCount(n) //nolint:errcheck // kept in storeErr; the attempt is on its way
	}
}

// recordRetry counts a retry before it is sent; an error (storage failed) stops it.
func (rb *requestBudget) recordRetry() error {
	n, reserved := rb.count()
	rb.countedAhead = true
	if reserved {
		return nil
	}
	return rb.storeCount(n)
}

// recordAhead counts the first attempt before it is signed, and stores the counts while it
// is: on Raft the write is an fsync, as long as signing or longer. The returned wait must
// return before the attempt is sent, so that every request sent is counted in storage.
// An attempt that is then not sent (signing failed) stays counted; one whose count could
// not be stored is not sent: wait returns the error.
func (rb *requestBudget) recordAhead() (wait func() error) {
	n, reserved := rb.count()
	rb.countedAhead = true
	if reserved {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- rb.storeCount(n) }()
	return func() error { return <-done }
}

// count counts an attempt in memory; its number is the application's, and reserved says
// the stored counts include it already (see appGuard.count).
func (rb *requestBudget) count() (n int64, reserved bool) {
	now := rb.now()
	rb.attempts++
	rb.log.record(now, rb.perHour, rb.single)
	if rb.app == nil {
		return 0, true
	}
	return rb.app.count(now, rb.keysInUse)
}

func (rb *requestBudget) storeCount(n int64) error {
	err := rb.app.store(rb.ctx, rb.storage, n, rb.now(), max(rb.appPerHour, 0))
	if err != nil {
		rb.storeErr = err
	}
	return err
}

type requestBudgetKey struct{}

func withRequestBudget(ctx context.Context, rb *requestBudget) context.Context {
	return context.WithValue(ctx, requestBudgetKey{}, rb)
}

func requestBudgetFrom(ctx context.Context) *requestBudget {
	rb, _ := ctx.Value(requestBudgetKey{}).(*requestBudget)
	return rb
}

func (c *tokenCache) requestLog(key tokenKey) *requestLog {
	if v, ok := c.requests.Load(key); ok {
		return v.(*requestLog)
	}
	v, _ := c.requests.LoadOrStore(key, &requestLog{sending: make(chan struct{}, 1)})
	return v.(*requestLog)
}

// fetch asks Naver for the key's token (see request); the answer is bounded by what is
// known of the key's token. A key that failed last time sends no retries. recovered: Naver
// came back since the key's failure, so the request need not keep to the pace.
func (c *tokenCache) fetch(ctx context.Context, s logical.Storage, ks *keyState, p *cachePolicy, background, recovered bool) (*cachedToken, error) {
	ks.mu.Lock()
	failing := ks.failures > 0
	ks.mu.Unlock()
	return c.request(ctx, s, ks.key, p, requestOptions{
		bound:      func(t *cachedToken) { c.boundHandedBack(ks, t) },
		background: background,
		single:     failing,
		unpaced:    recovered,
	})
}

// naverBackFor reports whether a key backing off after failure may ask now because Naver
// came back for the application since: only after Naver failed (no answer or a 5xx; not a
// 429 or Retry-After, which ask for time), at least failureBackoff after it, and only once
// per recovery — a key whose own request fails again waits for the next one — and never
// into the last burst of the key's hourly budget (perHour).
func (c *tokenCache) naverBackFor(key tokenKey, perHour int, failure *renewFailure, now time.Time) bool {
	var ue *upstreamError
	if !errors.As(failure.Err, &ue) || ue.RetryAfter > 0 || ue.StatusCode == http.StatusTooManyRequests || !naverFailing(ue) {
		return false
	}
	if now.Sub(failure.At) < failureBackoff || !c.app(key.ClientID).recoveredSince(failure.At) {
		return false
	}
	// Never into the last burst of the key's hour: the pace alone may need it.
	n, _ := c.requestLog(key).since(now, time.Hour)
	burst, _ := pacing(perHour)
	return perHour <= 0 || n < perHour-burst
}

// requestOptions say how one request is made.
type requestOptions struct {
	bound      func(*cachedToken) // bounds the answer by what is known; nil: nothing is
	background bool               // a background renewal: only its share of the budget
	single     bool               // no retries
	unpaced    bool               // Naver came back: not held to the pace (the budget holds)
	// verification: the SELF request that verifies credentials before they are stored.
	verification bool
}

// request asks Naver within the key's hourly budget: every HTTP attempt counts. One request
// per key is sent at a time, whatever the credentials generation: Naver penalises
// concurrent requests, and a request made just before a credential change may still be
// running. bound, when set, bounds the answer by what is known. An answer whose token
// cannot be served (too little life, or an exp already past) is a failure of Naver's: it
// comes back with the error, as the fact of that token, so that it is remembered.
func (c *tokenCache) request(ctx context.Context, s logical.Storage, key tokenKey, p *cachePolicy, opts requestOptions) (*cachedToken, error) {
	log := c.requestLog(key)
	select {
	case log.sending <- struct{}{}:
		defer func() { <-log.sending }()
	case <-ctx.Done():
		return nil, &upstreamError{Err: fmt.Errorf("waiting for the request in flight for this token: %w", ctx.Err())}
	}
	app := c.app(key.ClientID)
	if err := app.load(ctx, s); err != nil {
		// A lost entry is replaced by the counts in memory; a failed read is tried again
		// before the request is sent, which it is not while the counts cannot be stored.
		c.logger.Warn("reading the application's request counts failed", "error", err)
	}
	// The automatic budget counts the keys in use: after a restart, those in storage too.
	c.ensureSwept(ctx, s, p.credentials)
	rb := &requestBudget{log: log, perHour: p.perHour, now: c.now, app: app, appPerHour: c.appBudget(p, app, c.now()),
		keysInUse:  int(c.keysInUse.Load()),
		background: opts.background, single: opts.single || app.failing(), unpaced: opts.unpaced, ctx: ctx, storage: s}
	if opts.background {
		// Background renewals leave at least one request of the hour to reads.
		rb.appPerHour = min(int(float64(rb.appPerHour)*backgroundShare), rb.appPerHour-1)
		if rb.appPerHour < 1 {
			rb.appPerHour = -1 // none
		}
	}
	if err := rb.check(); err != nil {
		var ab *appBudgetError
		if errors.As(err, &ab) {
			c.metrics.appBudgetRefused()
		} else {
			c.metrics.budgetRefused()
		}
		c.logger.Warn("token request refused by the hourly budget", "type", key.Type, "error", err)
		return nil, err
	}
	// A verification is of credentials not yet stored: it neither waits on the breaker of
	// the live config nor feeds it.
	var probe bool
	if !opts.verification {
		var err error
		if probe, err = app.admit(c.now(), p.timeout); err != nil {
			c.metrics.breakerRefused()
			return nil, err
		}
	}
	sentAt := c.now()
	raw, err := p.fetch(withRequestBudget(ctx, rb), key)
	var countsErr *appCountsError
	notSent := errors.As(err, &countsErr) && rb.attempts <= 1
	switch {
	case opts.verification:
	case notSent:
		// Storage failed, not Naver: nothing for the breaker to learn.
		app.endProbe(probe)
	default:
		app.result(c.now(), probe, err)
	}
	if rb.storeErr != nil {
		c.logger.Warn("storing the application's request counts failed; the request was not sent", "error", rb.storeErr)
	}
	if notSent {
		return nil, err
	}
	if err != nil {
		c.metrics.tokenRequested(err)
		return nil, err
	}
	tok := &cachedToken{accessToken: raw, Key: key, Credentials: p.credentials, FetchedAt: sentAt, Fingerprint: tokenFingerprint(raw.AccessToken)}
	if opts.bound != nil {
		opts.bound(tok)
	}
	if left := tok.life(c.now()); left < minServableLife {
		err := &upstreamError{StatusCode: http.StatusOK, Err: fmt.Errorf("the token it issued has only %s left, too little to serve", max(left, 0).Round(time.Second))}
		c.metrics.tokenRequested(err)
		return tok.retired(retiredUnusable), err
	}
	c.metrics.tokenRequested(nil)
	return tok, nil
}

// recordFailure notes a failed request (or one the budget refused) of the key, sets its
// back-off, and returns the failure reads report. perHour is the key's budget: the
// back-off lasts at least until the pace lets the next request go.
func (c *tokenCache) recordFailure(ks *keyState, credentials string, perHour int, err error) *renewFailure {
	now := c.now()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ke := &keyError{At: now, Message: err.Error()}
	var ue *upstreamError
	if errors.As(err, &ue) {
		ke.StatusCode, ke.Code, ke.TraceID = ue.StatusCode, ue.Code, ue.TraceID
	}
	ks.lastError = ke
	failure := &renewFailure{Err: err, At: now}
	if c.generation.Load() != ks.gen {
		// Made with credentials that are gone: the new ones owe it no back-off.
		return failure
	}
	if ks.failedWith != credentials {
		ks.failures, ks.failedWith = 0, credentials
	}
	ks.lastFailure = failure
	var be *budgetError
	var ab *appBudgetError
	var br *breakerError
	var ce *appCountsError
	if errors.As(err, &be) || errors.As(err, &ab) || errors.As(err, &br) || errors.As(err, &ce) {
		// A refusal sent nothing; the budget or the breaker is itself the back-off.
		return failure
	}
	ks.failures++
	// Reads share the failure until the pace lets the key ask again, so that they are
	// answered with Naver's failure, not a refusal of the budget.
	ks.backoffUntil = latest(now.Add(readBackoff(err, ks.failures)), c.requestLog(ks.key).nextPaced(now, perHour))
	ks.nextBackground = latest(now.Add(doubling(backgroundBackoff, ks.failures, maxBackgroundBackoff)), ks.backoffUntil)
	return failure
}

func (c *tokenCache) recordSuccess(ks *keyState) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.failures, ks.lastFailure = 0, nil
	ks.backoffUntil, ks.nextBackground = time.Time{}, time.Time{}
}

// backoffUntil is when reads of key may ask Naver again after a failure (zero: now).
func (c *tokenCache) backoffUntil(key tokenKey) time.Time {
	v, ok := c.entries.Load(key)
	if !ok {
		return time.Time{}
	}
	ks := v.(*keyState)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.backoffUntil
}

// failureFor is the key's last failure if it was made with credentials; ks.mu is held.
func (ks *keyState) failureFor(credentials string) *renewFailure {
	if ks.failedWith != credentials {
		return nil
	}
	return ks.lastFailure
}

// readBackoff is how long reads share a failure instead of asking Naver again. Naver's
// Retry-After can lengthen it, never shorten it: it says when Naver may be ready at the
// earliest, not that asking sooner than the key's own back-off is safe (seed 44).
func readBackoff(err error, failures int) time.Duration {
	base := failureBackoff
	var retryAfter time.Duration
	var ue *upstreamError
	if errors.As(err, &ue) {
		retryAfter = ue.RetryAfter
		if ue.StatusCode == http.StatusTooManyRequests {
			base = rateLimitBackoff
		}
	}
	return max(doubling(base, failures, maxBackoff), min(retryAfter, maxBackoff))
}

// doubling is base doubled for every failure after the first, at most ceiling.
func doubling(base time.Duration, failures int, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < failures && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// earliest is the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// latest is the later of a and b.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
