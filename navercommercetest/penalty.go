package navercommercetest

import (
	"fmt"
	"time"
)

// Defaults for the zero values of PenaltyConfig.
const (
	DefaultPenaltyRequestsPerHour = 60
	DefaultPenaltyDuration        = time.Hour
)

const (
	// penaltyWindow is the sliding hour over which violations and
	// requests are counted.
	penaltyWindow = time.Hour
	// penaltyAllowanceEvery is how often a penalised application still gets
	// a token request answered normally: Naver's "about one per hour".
	penaltyAllowanceEvery = time.Hour
)

// PenaltyConfig models the penalty Naver imposes on an application whose
// token requests are needless, concurrent, non-compliant or too many: the
// application is limited to about one token request per hour. The real
// thresholds are not public, so they are configurable; the zero value is the
// strict default (on, first violation, 60 requests per hour, for an hour).
//
// While an application is penalised, its token requests are answered 429
// with Naver's error JSON, code GW.RATE_LIMIT, except one request an hour
// (counted from the start of the penalty), which is answered normally. A
// request that breaks a rule (parameters in the query string, account_id
// with type=SELF, a concurrent or needless request) gets the answer it would
// get anyway, so the test sees the real error, and the penalty applies from
// the next request; a request over the budget is itself refused. Every
// further offence while penalised extends the penalty to Duration after it.
type PenaltyConfig struct {
	// Disabled turns the penalty off; violations are still recorded in
	// Violations. Tests that over-ask on purpose set it.
	Disabled bool
	// ViolationsAllowed is how many violations an application may commit
	// within a sliding hour before the penalty starts: 0 (the default)
	// means the first violation starts it; negative means violations never
	// start it (only the request budget does).
	ViolationsAllowed int
	// RequestsPerHour is the hard budget of token requests per application
	// per sliding hour, whatever their answer: 0 means
	// DefaultPenaltyRequestsPerHour, negative means no budget. A request
	// counts when it reaches the gateway, after any latency (one whose
	// client gave up during the latency does not). With a shortened
	// TokenLifetime a compliant client asks more often (once per key every
	// TokenLifetime - ReuseThreshold): raise the budget to match.
	RequestsPerHour int
	// Duration is how long a penalty lasts after the last offence, on the
	// emulator's clock: 0 means DefaultPenaltyDuration.
	Duration time.Duration
	// RetryAfter adds a Retry-After header (seconds until the penalty ends
	// or the next allowed request, whichever is sooner) to the 429s. Naver
	// documents no such header, so it is off by default.
	RetryAfter bool
}

// resolved returns p with its defaults filled in, or an error for a value
// that cannot be meant.
func (p PenaltyConfig) resolved() (PenaltyConfig, error) {
	if p.Duration < 0 {
		return PenaltyConfig{}, fmt.Errorf("penalty duration %v is negative", p.Duration)
	}
	if p.Duration == 0 {
		p.Duration = DefaultPenaltyDuration
	}
	if p.RequestsPerHour == 0 {
		p.RequestsPerHour = DefaultPenaltyRequestsPerHour
	}
	if p.RequestsPerHour < 0 {
		p.RequestsPerHour = -1
	}
	if p.ViolationsAllowed < 0 {
		p.ViolationsAllowed = -1
	}
	return p, nil
}

// PenaltyStats is the penalty record of one application, in Stats.
type PenaltyStats struct {
	// Active reports whether the application is penalised at the
	// emulator's clock now.
	Active bool `json:"active"`
	// Since is when the current (or last) penalty started; Until is when it
	// ends (or ended).
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Reason is the offence that started or last extended the penalty.
	Reason string `json:"reason"`
	// Refused counts token requests answered 429 because of the penalty;
	// Allowed counts those answered normally as the hourly allowance.
	Refused int `json:"refused"`
	Allowed int `json:"allowed"`
}

// penaltyState is what the emulator knows about one application's
// behaviour. It exists only while the penalty is enabled.
type penaltyState struct {
	requests   []time.Time // token requests within the sliding hour, oldest first
	violations []time.Time // violations within the sliding hour, oldest first
	penalised  bool        // penalised at some point since Reset
	since      time.Time
	until      time.Time
	reason     string
	// offender is the request whose rule violation last started or
	// extended the penalty: it still gets its own answer. 0 = none.
	offender uint64
	// lastAllowed is when the last request was let through during the
	// penalty (initially the penalty's start).
	lastAllowed time.Time
	refused     int
	allowed     int
}

func (s *penaltyState) active(now time.Time) bool { return s.penalised && now.Before(s.until) }

// prune drops what has left the sliding hour.
func (s *penaltyState) prune(now time.Time) {
	s.requests = dropBefore(s.requests, now.Add(-penaltyWindow))
	s.violations = dropBefore(s.violations, now.Add(-penaltyWindow))
}

// dropBefore removes times at or before cutoff from the sorted slice ts.
func dropBefore(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cutoff) {
		i++
	}
	return ts[i:]
}

func (s *penaltyState) stats(now time.Time) PenaltyStats {
	return PenaltyStats{Active: s.active(now), Since: s.since, Until: s.until, Reason: s.reason, Refused: s.refused, Allowed: s.allowed}
}

// penaltyStateLocked returns the state of a registered application, or nil
// when the penalty is disabled or the client is unknown (Naver cannot
// penalise an application that does not exist).
func (e *Emulator) penaltyStateLocked(clientID string) *penaltyState {
	if e.penalty.Disabled || e.apps[clientID] == nil {
		return nil
	}
	s := e.penalties[clientID]
	if s == nil {
		s = &penaltyState{}
		e.penalties[clientID] = s
	}
	return s
}

// offenceLocked notes a rule violation (already recorded in Violations) by
// request seq of clientID, and starts or extends the penalty when the
// application has used up its allowed violations.
func (e *Emulator) offenceLocked(clientID string, seq uint64, now time.Time, violation string) {
	s := e.penaltyStateLocked(clientID)
	if s == nil {
		return
	}
	s.prune(now)
	s.violations = append(s.violations, now)
	if e.penalty.ViolationsAllowed < 0 || len(s.violations) <= e.penalty.ViolationsAllowed {
		return
	}
	reason := violation
	if e.penalty.ViolationsAllowed > 0 {
		reason = fmt.Sprintf("%d violations within an hour (%d allowed), the last: %s",
			len(s.violations), e.penalty.ViolationsAllowed, violation)
	}
	e.penaliseLocked(clientID, s, seq, now, reason)
}

// countRequestLocked counts a token request of clientID that reached the
// gateway and applies the hourly budget; a request over it starts or extends
// the penalty and is refused.
func (e *Emulator) countRequestLocked(clientID string, now time.Time) {
	s := e.penaltyStateLocked(clientID)
	if s == nil || e.penalty.RequestsPerHour < 0 {
		return
	}
	s.prune(now)
	s.requests = append(s.requests, now)
	if len(s.requests) <= e.penalty.RequestsPerHour {
		return
	}
	v := fmt.Sprintf("too many token requests: client %q sent %d token requests within an hour (budget %d)",
		clientID, len(s.requests), e.penalty.RequestsPerHour)
	e.recordViolationLocked("%s", v)
	e.penaliseLocked(clientID, s, 0, now, v)
}

func (e *Emulator) penaliseLocked(clientID string, s *penaltyState, offender uint64, now time.Time, reason string) {
	if !s.active(now) {
		s.penalised = true
		s.since = now
		s.lastAllowed = now
		e.logf("PENALTY: client %q is limited to about one token request per hour until %s: %s",
			clientID, now.Add(e.penalty.Duration).UTC().Format(time.RFC3339), reason)
	}
	s.until = now.Add(e.penalty.Duration)
	s.reason = reason
	s.offender = offender
}

// penaltyVerdict is the penalty's decision on one token request.
type penaltyVerdict struct {
	refused    bool
	until      time.Time
	reason     string
	retryAfter time.Duration // until the penalty ends or the next allowance
}

// judgePenaltyLocked decides whether request seq of clientID is refused.
func (e *Emulator) judgePenaltyLocked(clientID string, seq uint64, now time.Time) penaltyVerdict {
	s := e.penaltyStateLocked(clientID)
	if s == nil || !s.active(now) || s.offender == seq {
		return penaltyVerdict{}
	}
	nextAllowance := s.lastAllowed.Add(penaltyAllowanceEvery)
	if !now.Before(nextAllowance) {
		s.lastAllowed = now
		s.allowed++
		return penaltyVerdict{}
	}
	s.refused++
	wait := s.until.Sub(now)
	if w := nextAllowance.Sub(now); w < wait {
		wait = w
	}
	return penaltyVerdict{refused: true, until: s.until, reason: s.reason, retryAfter: wait}
}

// SetPenalty replaces the penalty settings from now on. The record of past
// requests, violations and penalties is kept (Reset clears it). It panics on
// a negative Duration.
func (e *Emulator) SetPenalty(p PenaltyConfig) {
	if err := e.setPenalty(p); err != nil {
		panic("navercommercetest: " + err.Error())
	}
}

func (e *Emulator) setPenalty(p PenaltyConfig) error {
	r, err := p.resolved()
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.penalty = r
	return nil
}

// PenaltySettings returns the penalty settings in effect, defaults filled
// in (RequestsPerHour and ViolationsAllowed are -1 when unlimited).
func (e *Emulator) PenaltySettings() PenaltyConfig {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.penalty
}

// Penalty returns the penalty record of an application and whether it has
// been penalised since the last Reset.
func (e *Emulator) Penalty(clientID string) (PenaltyStats, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.penalties[clientID]
	if s == nil || !s.penalised {
		return PenaltyStats{}, false
	}
	return s.stats(e.now()), true
}

func (e *Emulator) countRequest(clientID string) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.countRequestLocked(clientID, now)
}

func (e *Emulator) judgePenalty(clientID string, seq uint64) penaltyVerdict {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.judgePenaltyLocked(clientID, seq, now)
}
