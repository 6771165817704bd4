package navercommercetest

import (
	"fmt"
	"time"
)

// What the emulator recorded: requests, tokens issued, concurrency and violations.

// TokenRequests returns the number of requests to the token endpoint,
// accepted or not.
func (e *Emulator) TokenRequests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tokenRequests
}

// TokenRequestsFor returns the number of token requests for one key, as sent
// by the client; accountID is "" for SELF.
func (e *Emulator) TokenRequestsFor(clientID, typ, accountID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.keys[tokenKey{clientID, typ, accountID}]; s != nil {
		return s.requests
	}
	return 0
}

// IssuedTokens returns the number of newly minted tokens (reused tokens are
// not counted).
func (e *Emulator) IssuedTokens() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.issued
}

// MaxInFlight returns the most token requests seen in flight at once for one
// key, fault delays included.
func (e *Emulator) MaxInFlight(clientID, typ, accountID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.keys[tokenKey{clientID, typ, accountID}]; s != nil {
		return s.maxInFlight
	}
	return 0
}

// Violations returns descriptions of non-compliant token requests, oldest
// first. Each starts with its kind: "parameters in query string",
// "account_id with type=SELF", "concurrent token requests", "needless token
// request" or (while the penalty is enabled) "too many token requests".
func (e *Emulator) Violations() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.violations...)
}

// recordViolationLocked records a violation in Violations and the log.
func (e *Emulator) recordViolationLocked(format string, args ...any) string {
	v := fmt.Sprintf(format, args...)
	e.violations = append(e.violations, v)
	e.logf("VIOLATION: %s", v)
	return v
}

// violationLocked records a rule violation by request seq of key at now and
// applies the penalty rules.
func (e *Emulator) violationLocked(key tokenKey, seq uint64, now time.Time, format string, args ...any) {
	v := e.recordViolationLocked(format, args...)
	e.offenceLocked(key.clientID, seq, now, v)
}

// arrive counts a token request for key and marks it in flight. It returns
// the request's sequence number and the number of requests in flight for
// key, this one included.
func (e *Emulator) arrive(key tokenKey) (seq uint64, inFlight int) {
	seq = e.seq.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokenRequests++
	s := e.keys[key]
	if s == nil {
		s = &keyStats{}
		e.keys[key] = s
	}
	s.requests++
	s.inFlight++
	if s.inFlight > s.maxInFlight {
		s.maxInFlight = s.inFlight
	}
	return seq, s.inFlight
}

func (e *Emulator) leave(key tokenKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.keys[key]; s != nil && s.inFlight > 0 {
		s.inFlight--
	}
}

// keyCounters returns the counters of key for the request log.
func (e *Emulator) keyCounters(key tokenKey) (requests, maxInFlight int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.keys[key]; s != nil {
		return s.requests, s.maxInFlight
	}
	return 0, 0
}

// Stats is the body of GET /_emulator/stats.
type Stats struct {
	TokenRequests int                 `json:"token_requests"`
	IssuedTokens  int                 `json:"issued_tokens"`
	Violations    []string            `json:"violations"`
	Keys          map[string]KeyStats `json:"keys"`
	// Penalties holds the applications penalised since the last Reset, by
	// client ID; empty when none was.
	Penalties map[string]PenaltyStats `json:"penalties"`
	// PenalisedUntil and PenaltyReason describe the penalty that ends last
	// (it may be over; see Penalties for whether it is active), so a test
	// that over-asked can fail with the reason. Zero when none.
	PenalisedUntil time.Time `json:"penalised_until,omitzero"`
	PenaltyReason  string    `json:"penalty_reason,omitempty"`
}

// KeyStats are the counters of one key ("<client_id>|<TYPE>|<account_id>").
type KeyStats struct {
	Requests    int `json:"requests"`
	MaxInFlight int `json:"max_in_flight"`
	InFlight    int `json:"in_flight"`
}

// Stats returns a snapshot of all counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Stats{
		TokenRequests: e.tokenRequests,
		IssuedTokens:  e.issued,
		Violations:    append([]string{}, e.violations...),
		Keys:          make(map[string]KeyStats, len(e.keys)),
	}
	for k, s := range e.keys {
		st.Keys[k.String()] = KeyStats{Requests: s.requests, MaxInFlight: s.maxInFlight, InFlight: s.inFlight}
	}
	st.Penalties = make(map[string]PenaltyStats)
	now := e.now()
	for clientID, s := range e.penalties {
		if !s.penalised {
			continue
		}
		st.Penalties[clientID] = s.stats(now)
		if s.until.After(st.PenalisedUntil) {
			st.PenalisedUntil, st.PenaltyReason = s.until, s.reason
		}
	}
	return st
}
