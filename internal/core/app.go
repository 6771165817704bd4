package core

import (
	"slices"
	"strconv"
	"time"
)

// Counts is the stored form of an application's request counts: per Unix minute, the
// requests counted (sent, or reserved ahead of time), the most keys in use when they were,
// and how many of the minute's counts were reserved ahead of time and perhaps never sent.
type Counts struct {
	Minutes  map[int64]int `json:"minutes"`
	Keys     map[int64]int `json:"keys,omitempty"`
	Reserved map[int64]int `json:"reserved,omitempty"`
}

// MarshalJSON writes what encoding/json writes for Counts (but for the order of the
// minutes), without reflection: the counts are written with nearly every request an
// application sends in a busy minute, and encoding/json's maps were most of that write.
func (c Counts) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 48+20*(len(c.Minutes)+len(c.Keys)+len(c.Reserved)))
	b = append(b, `{"minutes":`...)
	b = appendMinutes(b, c.Minutes)
	if len(c.Keys) > 0 {
		b = append(b, `,"keys":`...)
		b = appendMinutes(b, c.Keys)
	}
	if len(c.Reserved) > 0 {
		b = append(b, `,"reserved":`...)
		b = appendMinutes(b, c.Reserved)
	}
	return append(b, '}'), nil
}

// appendMinutes appends m as a JSON object, its keys in order (null when nil, as
// encoding/json writes a nil map).
func appendMinutes(b []byte, m map[int64]int) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, k, 10)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, int64(m[k]), 10)
	}
	return append(b, '}')
}

// appState is what the machine knows of one application's requests: its counts per
// minute (kept in storage, so a restart or a crash loop does not start the hour afresh)
// and its breaker.
type appState struct {
	clientID string

	// minutes counts requests per minute over the last hour: this process's, and what
	// storage held at the start (reserved counts among them, as sent).
	minutes map[int64]int
	// keys holds, per minute, the most keys in use when a request of that minute was
	// counted: the automatic budget stays as large as it was for those requests.
	keys map[int64]int
	// foreign is, per minute, how many counts storage held as reserved ahead of time by an
	// earlier process: perhaps never sent, counted as sent all the same. A minute's reserves
	// never pass countReserve together, however often the plugin restarts.
	foreign map[int64]int
	// slots are this process's counts stored ahead of time and not used yet, per minute:
	// a request that takes one needs no write of its own.
	slots map[int64]int
	// pruned: the maps were pruned in minute prunedAt and not written to since.
	pruned   bool
	prunedAt int64

	loaded  bool
	loading bool
	// waitLoad are the requests waiting for the stored counts to be read; loadRetried: the
	// read under way is the second of a failed one.
	waitLoad    []ReqID
	loadRetried bool
	// pending are the requests (attempts) counted in memory and waiting for a write to
	// include them; countSeq numbers counted attempts, storedSeq is the last one a write
	// that succeeded included.
	countSeq  int64
	storedSeq int64
	pending   []pendingAttempt
	writing   WriteID
	writeUpTo int64
	writeAt   int64 // the minute of the write in flight, and the reserve it adds
	writeRsv  int

	// The breaker: failures counts consecutive failed requests; from breakerThreshold on,
	// no key asks before openUntil, when one probe may. It belongs to endpoint.
	endpoint    string
	failures    int
	openUntil   time.Time
	probing     bool
	lastFailure error
	// recoveredAt is when a request last succeeded after the breaker had opened.
	recoveredAt time.Time
	// budgetSaid: a background renewal refused by the budget was logged, and none was
	// sent since.
	budgetSaid bool
}

// pendingAttempt is an attempt of request req, counted as number seq, waiting to be stored.
type pendingAttempt struct {
	req    ReqID
	seq    int64
	minute int64
}

func newAppState(clientID string) *appState {
	return &appState{clientID: clientID, minutes: map[int64]int{}, keys: map[int64]int{}, foreign: map[int64]int{}, slots: map[int64]int{}}
}

func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

// prune forgets minutes outside the window. A minute ahead of now (the clock stepped back)
// counts as now, so it leaves the window within the hour, not after the step's length.
func (a *appState) prune(now time.Time) {
	cur := minuteOf(now)
	if a.pruned && a.prunedAt == cur {
		return // nothing changed since this minute's prune (every budget check prunes)
	}
	a.pruned, a.prunedAt = true, cur
	for i, m := range []map[int64]int{a.keys, a.minutes, a.foreign, a.slots} {
		for k, v := range m {
			switch {
			case k <= cur-61:
				delete(m, k)
			case k > cur:
				delete(m, k)
				if i == 0 { // keys: the most, not a sum
					m[cur] = max(m[cur], v)
				} else {
					m[cur] += v
				}
			}
		}
	}
}

// lastHour counts the application's requests in the window before now, and the oldest
// minute holding any.
func (a *appState) lastHour(now time.Time) (n int, oldest time.Time) {
	a.prune(now)
	for m, k := range a.minutes {
		n += k
		if t := time.Unix(m*60, 0); oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return n, oldest
}

// keysInUse is the most keys in use when any request of the window was counted, or inUse
// if more.
func (a *appState) keysInUse(now time.Time, inUse int) int {
	a.prune(now)
	for _, n := range a.keys {
		inUse = max(inUse, n)
	}
	return inUse
}

// count counts one attempt at now while inUse keys were in use; stored says storage
// includes it already (it took a slot reserved ahead of time), else seq is its number for
// the write that must include it before it is sent.
func (a *appState) count(now time.Time, inUse int) (seq int64, stored bool) {
	a.prune(now)
	a.pruned = false
	m := minuteOf(now)
	a.minutes[m]++
	a.keys[m] = max(a.keys[m], inUse)
	if a.slots[m] > 0 {
		a.slots[m]--
		return 0, true
	}
	a.countSeq++
	return a.countSeq, false
}

// snapshot is the counts to write at now, and the reserve it adds in now's minute, so that
// the requests that follow in the minute go without a write each (on Raft an fsync): this
// process's unused slots are topped up to at most countReserve less what earlier processes
// left reserved in the minute (a crash loop thus adds at most countReserve a minute to what
// was really sent), only for a busy application (this minute's requests other than this
// one, and the two minutes before), and at most a hundredth of limit.
func (a *appState) snapshot(now time.Time, limit int) (Counts, int64, int) {
	a.prune(now)
	m := minuteOf(now)
	busy := a.minutes[m] - 1 + a.minutes[m-1] + a.minutes[m-2]
	target := max(min(countReserve-a.foreign[m], busy, limit/100), 0)
	reserve := max(target-a.slots[m], 0)
	c := Counts{Minutes: make(map[int64]int, len(a.minutes)), Keys: make(map[int64]int, len(a.keys)), Reserved: map[int64]int{}}
	for k, v := range a.minutes {
		c.Minutes[k] = v
	}
	// Slots not used yet are in storage already: written again, or this write would
	// leave storage holding fewer requests than may be sent.
	for k, v := range a.slots {
		c.Minutes[k] += v
	}
	c.Minutes[m] += reserve
	for k, v := range a.keys {
		c.Keys[k] = v
	}
	for k, v := range a.foreign {
		c.Reserved[k] += v
	}
	for k, v := range a.slots {
		c.Reserved[k] += v
	}
	if reserve > 0 {
		c.Reserved[m] += reserve
	}
	if len(c.Reserved) == 0 {
		c.Reserved = nil
	}
	return c, m, reserve
}

// load merges the counts stored before the start.
func (a *appState) load(c *Counts) {
	if c == nil {
		return
	}
	a.pruned = false
	for m, n := range c.Minutes {
		a.minutes[m] += n // reserved ones too: nobody knows whether they were sent
	}
	for m, n := range c.Keys {
		a.keys[m] = max(a.keys[m], n)
	}
	for m, n := range c.Reserved {
		a.foreign[m] += n
	}
}

// admitBreaker decides whether a request may go to Naver now, as far as the breaker goes:
// nil, or a *BreakerError. A request admitted while the breaker is open is its probe: no
// other key asks until it ends (within timeout).
func (a *appState) admitBreaker(now time.Time, timeout time.Duration) (probe bool, err error) {
	if a.failures < breakerThreshold {
		return false, nil
	}
	if now.Before(a.openUntil) || a.probing {
		return false, &BreakerError{Failures: a.failures, Until: a.openUntil, Last: a.lastFailure}
	}
	a.probing = true
	a.openUntil = now.Add(timeout)
	return true, nil
}

// endProbe ends a probe that sent nothing: the next request may probe.
func (a *appState) endProbe(probe bool) {
	if probe {
		a.probing, a.openUntil = false, time.Time{}
	}
}

// failingUntil is when the breaker lets a probe through, zero when it is closed.
func (a *appState) failingUntil() time.Time {
	if a.failures < breakerThreshold {
		return time.Time{}
	}
	return a.openUntil
}

// result feeds one request's outcome to the breaker. Only Naver failing counts.
func (a *appState) result(now time.Time, probe bool, err error, o Outcome) {
	if probe {
		a.probing = false
	}
	if err == nil || !o.failing() {
		if a.failures >= breakerThreshold {
			a.recoveredAt = now
		}
		a.failures, a.openUntil, a.lastFailure = 0, time.Time{}, nil
		return
	}
	a.failures++
	a.lastFailure = err
	if a.failures >= breakerThreshold {
		a.openUntil = now.Add(Doubling(breakerBackoff, a.failures-breakerThreshold+1, MaxBreakerBackoff))
	}
}

// resetBreaker forgets what the breaker learnt of another endpoint: a failure of the old
// address says nothing of the new one. It reports whether the endpoint changed from one the
// application had.
func (a *appState) resetBreaker(endpoint string) (moved bool) {
	if a.endpoint == endpoint {
		return false
	}
	moved = a.endpoint != ""
	a.endpoint = endpoint
	a.failures, a.openUntil, a.probing, a.lastFailure = 0, time.Time{}, false, nil
	return moved
}

// budget is the application's budget per hour at now: the configured one, or the
// automatic one from the keys Naver issued a token to that are in use (inUse), kept as
// large as it was for any request still counted.
func (a *appState) budget(cfg *Config, now time.Time, inUse int) int {
	if cfg.AppPerHour > 0 {
		return cfg.AppPerHour
	}
	return AppBudgetFloor + AppBudgetPerKey*a.keysInUse(now, inUse)
}
