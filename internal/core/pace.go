package core

import "time"

// requestLog remembers when a key asked Naver, for its hourly budget and status. It lives
// with the key, which is forgotten only once nothing in the log counts any more.
type requestLog struct {
	times []time.Time // oldest first, at most a day
	// paceAt is the pacing's theoretical arrival time (GCRA): a paced attempt may go once
	// paceAt is at most (burst-1) intervals ahead of now.
	paceAt time.Time
	// paceInterval is the pacing interval paceAt was reckoned in (see rescale).
	paceInterval time.Duration
}

// Pacing is how a key's budget of perHour requests is spread while Naver fails for it: a
// burst of up to PaceBurst, then one attempt per interval, the interval leaving the burst
// room in every hour, so the pace alone never spends the hourly budget and a storm of any
// length leaves the key a request within one interval of Naver's recovery.
func Pacing(perHour int) (burst int, interval time.Duration) {
	burst = max(min(PaceBurst, perHour), 1)
	return burst, time.Hour / time.Duration(max(perHour-burst, 1))
}

// rescale keeps what the key owes the pace in attempts when the interval changes (an
// operator changed max_token_requests_per_hour): reckoned in time, a debt run up at one
// request an hour would hold a key raised to twelve an hour for hours.
func (l *requestLog) rescale(now time.Time, interval time.Duration) {
	if l.paceInterval == interval {
		return
	}
	if l.paceInterval > 0 && l.paceAt.After(now) {
		owed := float64(l.paceAt.Sub(now)) / float64(l.paceInterval)
		l.paceAt = now.Add(time.Duration(owed * float64(interval)))
	}
	l.paceInterval = interval
}

// clamp counts attempts ahead of now (the clock stepped back) as made now, and owes the pace
// at most an hour: otherwise a step back holds them for the step's length plus an hour,
// though Naver's hour (real time) ended long before.
func (l *requestLog) clamp(now time.Time) {
	for i := len(l.times) - 1; i >= 0 && l.times[i].After(now); i-- {
		l.times[i] = now
	}
	if most := now.Add(time.Hour); l.paceAt.After(most) {
		l.paceAt = most
	}
}

// record notes an attempt sent at now. failing: it was sent while the key (or the
// application) was failing.
func (l *requestLog) record(now time.Time, perHour int, failing bool) {
	l.trim(now)
	l.times = append(l.times, now)
	if perHour <= 0 {
		return
	}
	// Every attempt takes its place in the pace. One sent while Naver was healthy (drops,
	// verifications, a read and its retries) empties the burst but owes no more than an
	// empty one; one sent while failing, ahead of the pace (after Naver came back), is
	// owed: the next paced attempt waits for it.
	burst, interval := Pacing(perHour)
	l.rescale(now, interval)
	l.paceAt = latest(l.paceAt, now).Add(interval)
	if !failing {
		l.paceAt = earliest(l.paceAt, now.Add(time.Duration(burst)*interval))
	}
}

// forgetPace forgets what the key owes the pace (not the attempts its budget counts).
func (l *requestLog) forgetPace() { l.paceAt = time.Time{} }

// nextPaced is when the pace lets the key's next attempt go (at or before now: at once).
// Besides the interval, a paced attempt never takes the last request of the key's hour:
// attempts sent while Naver was healthy, just before a storm, count in the hour though the
// pace forgives them, and a storm must not spend the budget.
func (l *requestLog) nextPaced(now time.Time, perHour int) time.Time {
	if perHour <= 0 {
		return time.Time{}
	}
	l.clamp(now)
	burst, interval := Pacing(perHour)
	l.rescale(now, interval)
	next := l.paceAt.Add(-time.Duration(burst-1) * interval)
	first := l.firstInHour(now)
	inHour, room := len(l.times)-first, max(perHour-1, burst)
	if inHour >= room {
		next = latest(next, l.times[first+inHour-room].Add(time.Hour))
	}
	return next
}

// firstInHour is the index of the oldest attempt within the hour before now.
func (l *requestLog) firstInHour(now time.Time) int {
	first := len(l.times)
	for first > 0 && now.Sub(l.times[first-1]) < time.Hour {
		first--
	}
	return first
}

func (l *requestLog) trim(now time.Time) {
	if len(l.times) == 0 && l.paceAt.IsZero() {
		return // most keys, most minutes
	}
	l.clamp(now)
	i := 0
	for i < len(l.times) && now.Sub(l.times[i]) >= 24*time.Hour {
		i++
	}
	if i > 0 {
		l.times = append(l.times[:0:0], l.times[i:]...)
	}
}

// restamp moves the latest attempt, counted at at, to now (later), when nothing was
// counted after it; it reports whether it did.
func (l *requestLog) restamp(at, now time.Time) bool {
	n := len(l.times)
	if n == 0 || !l.times[n-1].Equal(at) || !now.After(at) {
		return false
	}
	l.times[n-1] = now
	return true
}

// since counts the attempts in the last d, and returns the oldest of them.
func (l *requestLog) since(now time.Time, d time.Duration) (n int, oldest time.Time) {
	l.clamp(now)
	for i := len(l.times) - 1; i >= 0 && now.Sub(l.times[i]) < d; i-- {
		n++
		oldest = l.times[i]
	}
	return n, oldest
}

// last is the latest attempt (zero: none).
func (l *requestLog) last() time.Time {
	if len(l.times) == 0 {
		return time.Time{}
	}
	return l.times[len(l.times)-1]
}

// readBackoff is how long reads share a failure instead of asking Naver again. Naver's
// Retry-After can lengthen it (up to maxRetryAfter), never shorten it.
func readBackoff(o Outcome, failures int) time.Duration {
	base := FailureBackoff
	if o.Status == 429 {
		base = RateLimitBackoff
	}
	return max(Doubling(base, failures, maxBackoff), min(o.RetryAfter, maxRetryAfter))
}

// Doubling is base doubled for every failure after the first, at most ceiling.
func Doubling(base time.Duration, failures int, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < failures && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
