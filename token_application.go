package navercommerce

// What the whole application may ask of Naver: Naver judges (and penalises) the
// application, not the key, so beside each key's hourly budget there is one for the
// application, kept in storage across restarts and crash loops, and a circuit breaker that
// stops every key asking while Naver fails, but for one probe at a time.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

const (
	// appBudgetFloor and appBudgetPerKey make the automatic application budget per hour:
	// floor + perKey × keys in use, counting as in use for the hour every key that was when
	// a request of the hour was sent (see appBudget). A healthy application asks about
	// keys / 2.5 an hour, so this never binds it, while a storm of failures over any
	// number of keys stays far from it: the breaker lets one probe through at a time.
	appBudgetFloor  = 30
	appBudgetPerKey = 2
	// backgroundShare is the part of the application budget that background renewals may
	// use; the rest is kept for reads that apps are waiting on.
	backgroundShare = 0.75

	// breakerThreshold consecutive failed requests of the application (no answer, 5xx, 429)
	// open the breaker: no key asks before it closes, but for one probe every
	// breakerBackoff, doubled per further failure, at most maxBreakerBackoff.
	breakerThreshold  = 3
	breakerBackoff    = 30 * time.Second
	maxBreakerBackoff = 5 * time.Minute

	appStoragePrefix = "applications/"

	// appWindow is how long a request counts against the application's budget: counted per
	// minute, a request is kept one minute more than an hour, so no hour ever holds more.
	appWindow = time.Hour + time.Minute
)

// appGuard is what the cache knows of one application's requests.
type appGuard struct {
	clientID string

	mu sync.Mutex
	// minutes counts requests per minute over the last hour (Unix minute → count).
	minutes map[int64]int
	// keys holds, per minute of the same window, the most keys in use when a request of
	// that minute was counted: the automatic budget stays as large as it was for those
	// requests while they count, though the keys leave use (see appBudget).
	keys    map[int64]int
	loaded  bool  // the counts stored before a restart were read
	counted int64 // how many requests minutes has counted since the start
	// The last write of the counts reserved the requests up to reservedUntil (see
	// countReserve), in the minute reservedMinute: they need no write of their own.
	reservedUntil  int64
	reservedMinute int64
	// storeMu orders the writes of the counts; stored is the counted of the last one.
	storeMu sync.Mutex
	stored  int64
	// The breaker: failures counts consecutive failed requests; from breakerThreshold on,
	// no key asks before openUntil, when one probe may.
	failures    int
	openUntil   time.Time
	probing     bool
	lastFailure error
	// recoveredAt is when a request last succeeded after the breaker had opened: Naver is
	// back, and keys that failed in the storm need not wait for their pace.
	recoveredAt time.Time
}

// appCounts is the stored form of an application's request counts.
type appCounts struct {
	Minutes map[int64]int `json:"minutes"`
	// Keys: see appGuard.keys. Absent in what earlier versions stored.
	Keys map[int64]int `json:"keys,omitempty"`
}

func (a *appGuard) storageKey() string {
	sum := sha256.Sum256([]byte(a.clientID))
	return appStoragePrefix + hex.EncodeToString(sum[:16])
}

func (c *tokenCache) app(clientID string) *appGuard {
	if v, ok := c.apps.Load(clientID); ok {
		return v.(*appGuard)
	}
	v, _ := c.apps.LoadOrStore(clientID, &appGuard{clientID: clientID, minutes: map[int64]int{}, keys: map[int64]int{}})
	return v.(*appGuard)
}

// load reads the counts stored before a restart, once.
func (a *appGuard) load(ctx context.Context, s logical.Storage) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.loaded {
		return nil
	}
	if s == nil {
		a.loaded = true
		return nil
	}
	entry, err := s.Get(ctx, a.storageKey())
	if err != nil {
		return fmt.Errorf("reading the application's request counts: %w", err)
	}
	if entry != nil {
		var stored appCounts
		if err := entry.DecodeJSON(&stored); err != nil {
			// Lost: the counts in memory replace them at the next write, rather than no
			// count ever being stored again.
			a.loaded = true
			return &appCountsLostError{Err: err}
		}
		for m, n := range stored.Minutes {
			a.minutes[m] += n
		}
		for m, n := range stored.Keys {
			a.keys[m] = max(a.keys[m], n)
		}
	}
	a.loaded = true
	return nil
}

// appCountsLostError is a stored entry of the application's counts that does not decode:
// it is treated as lost and overwritten.
type appCountsLostError struct{ Err error }

func (e *appCountsLostError) Error() string {
	return fmt.Sprintf("the stored request counts of the application do not decode (%v); counting from those in memory", e.Err)
}

// appCountsError is a request not sent because the application's counts could not be read
// from or written to storage: every request sent is counted in storage first.
type appCountsError struct{ Err error }

func (e *appCountsError) Error() string {
	return fmt.Sprintf("not asking Naver: storage failed keeping the application's request counts: %v", e.Err)
}

func (e *appCountsError) Unwrap() error { return e.Err }

// lastHour counts the application's requests in the hour before now; a.mu is held.
func (a *appGuard) lastHourLocked(now time.Time) (n int, oldest time.Time) {
	cur := now.Unix() / 60
	for m := range a.keys {
		if m <= cur-61 {
			delete(a.keys, m)
		}
	}
	for m, k := range a.minutes {
		if m <= cur-61 {
			delete(a.minutes, m)
			continue
		}
		n += k
		if t := time.Unix(m*60, 0); oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return n, oldest
}

func (a *appGuard) lastHour(now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, _ := a.lastHourLocked(now)
	return n
}

// keysInUseLocked is the most keys in use when any request of the last hour was counted,
// or inUse if more; a.mu is held.
func (a *appGuard) keysInUseLocked(now time.Time, inUse int) int {
	a.lastHourLocked(now)
	for _, n := range a.keys {
		inUse = max(inUse, n)
	}
	return inUse
}

// count counts one request sent at now, while inUse keys were in use, and returns its
// number since the start, for store; reserved says that the stored counts include it
// already (see countReserve).
func (a *appGuard) count(now time.Time, inUse int) (n int64, reserved bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := now.Unix() / 60
	a.minutes[m]++
	a.keys[m] = max(a.keys[m], inUse)
	a.lastHourLocked(now)
	a.counted++
	return a.counted, m == a.reservedMinute && a.counted <= a.reservedUntil
}

// countReserve bounds how many requests one write of the counts stores ahead of time, in
// its minute, so that the requests that follow in that minute are sent without waiting for
// a write (on Raft an fsync each). After a crash the unused ones count as sent: the
// reserve is at most the requests of this minute and the two before (a busy application
// only: a quiet one writes every request) and a hundredth of the budget, so what a crash
// adds to an hour's count is at most 8 a minute and 61% of the budget.
const countReserve = 8

// store writes the counts to storage once they include request n (see count), so that a
// restart (or a crash loop) does not start the hour afresh. Concurrent requests share a
// write: each writes the counts as they are when its turn comes, which include every
// request counted before. limit is the application's budget.
func (a *appGuard) store(ctx context.Context, s logical.Storage, n int64, now time.Time, limit int) error {
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	if a.stored >= n {
		return nil // a later write included it
	}
	if s == nil {
		return nil
	}
	// Until the stored counts were read, writing would erase them: read them now (after a
	// failed read at the start), and send nothing while they cannot be.
	if err := a.load(ctx, s); err != nil {
		var lost *appCountsLostError
		if !errors.As(err, &lost) {
			return &appCountsError{Err: err}
		}
	}
	m := now.Unix() / 60
	a.mu.Lock()
	counted := a.counted
	stored := appCounts{Minutes: make(map[int64]int, len(a.minutes)), Keys: make(map[int64]int, len(a.keys))}
	for k, v := range a.minutes {
		stored.Minutes[k] = v
	}
	for k, v := range a.keys {
		stored.Keys[k] = v
	}
	// This request is counted in minute m already: only the others make it busy.
	reserve := max(min(countReserve, a.minutes[m]-1+a.minutes[m-1]+a.minutes[m-2], limit/100), 0)
	// Requests counted after this snapshot may still be sent on the last write's
	// reservation, without a write of their own: its unused part is stored again, or this
	// write would leave storage holding fewer requests than were sent.
	unused, unusedMinute := max(a.reservedUntil-counted, 0), a.reservedMinute
	a.mu.Unlock()
	if unused > 0 && unusedMinute == m {
		// In the same minute the new reservation covers them, if it is as large.
		reserve = max(reserve, int(unused))
	} else if unused > 0 {
		stored.Minutes[unusedMinute] += int(unused)
	}
	if reserve > 0 {
		stored.Minutes[m] += reserve
	}
	entry, err := logical.StorageEntryJSON(a.storageKey(), &stored)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, entry); err != nil {
		return &appCountsError{Err: fmt.Errorf("writing them: %w", err)}
	}
	a.stored = counted
	a.mu.Lock()
	a.reservedMinute, a.reservedUntil = m, counted+int64(reserve)
	a.mu.Unlock()
	return nil
}

// appBudgetError is a request not sent because the application spent its hourly budget.
type appBudgetError struct {
	Limit      int
	Background bool
	NextAfter  time.Time
}

func (e *appBudgetError) Error() string {
	who := "this application"
	if e.Background {
		who = "background renewals of this application (the rest is kept for reads)"
	}
	return fmt.Sprintf("not asking Naver: %s had %d token requests in the last hour, the application budget (max_application_requests_per_hour); the next is allowed at %s",
		who, e.Limit, e.NextAfter.UTC().Format(time.RFC3339))
}

// breakerError is a request not sent because Naver has been failing for the application.
type breakerError struct {
	Failures int
	Until    time.Time
	Last     error
}

func (e *breakerError) Error() string {
	return fmt.Sprintf("not asking Naver before %s: its last %d answers to this application were failures (the last: %v); one request tries again then",
		e.Until.UTC().Format(time.RFC3339), e.Failures, e.Last)
}

func (e *breakerError) Unwrap() error { return e.Last }

// admit decides whether a request may go to Naver now, as far as the breaker goes: nil, or
// a *breakerError. A request admitted while the breaker is open is its probe: no other
// key asks until it ends (within timeout).
func (a *appGuard) admit(now time.Time, timeout time.Duration) (probe bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failures < breakerThreshold {
		return false, nil
	}
	if now.Before(a.openUntil) || a.probing {
		return false, &breakerError{Failures: a.failures, Until: a.openUntil, Last: a.lastFailure}
	}
	a.probing = true
	a.openUntil = now.Add(timeout)
	return true, nil
}

// endProbe ends a probe that sent nothing: the next request may probe.
func (a *appGuard) endProbe(probe bool) {
	if !probe {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.probing, a.openUntil = false, time.Time{}
}

// failingUntil is when the breaker lets a probe through, zero when it is closed.
func (a *appGuard) failingUntil() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failures < breakerThreshold {
		return time.Time{}
	}
	return a.openUntil
}

// recoveredSince reports whether Naver came back for the application (a request succeeded
// after the breaker had opened) after t.
func (a *appGuard) recoveredSince(t time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recoveredAt.After(t)
}

// lastRecovery is when Naver last came back for the application (zero: never).
func (a *appGuard) lastRecovery() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recoveredAt
}

// failing reports whether the application's last request failed: then no retries.
func (a *appGuard) failing() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failures > 0
}

// result feeds one request's outcome to the breaker. Only Naver failing counts: a refusal
// (4xx) is about the request, not about Naver.
func (a *appGuard) result(now time.Time, probe bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if probe {
		a.probing = false
	}
	if !naverFailing(err) {
		if a.failures >= breakerThreshold {
			a.recoveredAt = now
		}
		a.failures, a.openUntil, a.lastFailure = 0, time.Time{}, nil
		return
	}
	a.failures++
	a.lastFailure = err
	if a.failures >= breakerThreshold {
		a.openUntil = now.Add(doubling(breakerBackoff, a.failures-breakerThreshold+1, maxBreakerBackoff))
	}
}

// naverFailing reports whether err is Naver (or the way to it) failing: no answer, a 5xx
// or a 429. Anything else, success included, tells that Naver answers.
func naverFailing(err error) bool {
	if err == nil {
		return false
	}
	var ue *upstreamError
	if !errors.As(err, &ue) {
		return false
	}
	return ue.StatusCode == 0 || ue.StatusCode == http.StatusTooManyRequests || ue.StatusCode >= 500
}

// appBudget is the application's budget per hour at now: the configured one, or the
// automatic one derived from the keys in use. A key that leaves use (its role deleted, its
// account no longer allowed, its token evicted, or not counted after a restart) counts as
// in use as long as requests sent while it was do: Naver still counts them, and a budget
// that shrank below them would refuse the keys left, healthy ones, for up to an hour. A
// storm still meets the budget of the keys it runs over. app may be nil (no requests yet).
func (c *tokenCache) appBudget(p *cachePolicy, app *appGuard, now time.Time) int {
	if p.appPerHour > 0 {
		return p.appPerHour
	}
	inUse := int(c.keysInUse.Load())
	if app != nil {
		app.mu.Lock()
		inUse = app.keysInUseLocked(now, inUse)
		app.mu.Unlock()
	}
	return appBudgetFloor + appBudgetPerKey*inUse
}
