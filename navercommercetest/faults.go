package navercommercetest

import (
	"fmt"
	"time"
)

// Faults a test injects into the next token requests.

// Fault replaces the normal answer of upcoming token requests. Faults are
// queued and consumed in order, one per token request, before the request is
// validated: a request takes the oldest queued fault aimed at it.
type Fault struct {
	Count      int    // how many upcoming token requests it applies to (0 = 1)
	Status     int    // HTTP status, e.g. 500, 429, 503
	Code       string // Naver error code; default depends on Status
	Message    string // Naver error message; default depends on Status
	RetryAfter string // Retry-After header value, if set
	// Delay is slept before answering; it ends early when the client goes
	// away. A fault with only a Delay (no Status, Body or DropConnection)
	// delays the request and then answers it normally, which is how tests
	// hold requests in flight.
	Delay time.Duration
	// Body is sent raw instead of Naver's error JSON (garbage, HTML); the
	// status is Status, or 200 when Status is 0.
	Body string
	// DropConnection hijacks the connection and closes it without an answer.
	// It needs a real server (NewServer), not an httptest.ResponseRecorder.
	DropConnection bool
	// AccountID and Type aim the fault at some keys only: a fault with an
	// AccountID applies only to token requests for that account_id, one with
	// a Type (SELF or SELLER) only to requests of that type; other requests
	// pass it by and leave it queued. Empty: any request, whichever asks
	// first.
	AccountID string
	Type      string
}

// InjectFault queues f for the next token requests (those it is aimed at).
// It panics on a fault that could have no effect or has an impossible status
// or aim.
func (e *Emulator) InjectFault(f Fault) {
	if err := checkFault(f); err != nil {
		panic("navercommercetest: " + err.Error())
	}
	if f.Count <= 0 {
		f.Count = 1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, f)
}

// ClearFaults drops the faults still queued: an outage ends. Unlike Reset it
// leaves tokens, counters, violations and penalties alone, so every token
// handed out before keeps working.
func (e *Emulator) ClearFaults() { e.clearFaults() }

// clearFaults is ClearFaults, returning how many queued faults it dropped.
func (e *Emulator) clearFaults() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.faults)
	e.faults = nil
	return n
}

func checkFault(f Fault) error {
	switch {
	case f.Count < 0:
		return fmt.Errorf("fault count %d is negative", f.Count)
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return fmt.Errorf("fault status %d is not in 200..599", f.Status)
	case f.Delay < 0:
		return fmt.Errorf("fault delay %v is negative", f.Delay)
	case f.Status == 0 && f.Body == "" && !f.DropConnection && f.Delay == 0:
		return fmt.Errorf("fault has no effect: set Status, Body, Delay or DropConnection")
	case f.Type != "" && f.Type != "SELF" && f.Type != "SELLER":
		return fmt.Errorf("fault type %q is neither SELF nor SELLER", f.Type)
	case f.Type == "SELF" && f.AccountID != "":
		return fmt.Errorf("fault account_id %q with type SELF would never apply: a SELF token request has no account_id", f.AccountID)
	}
	return nil
}

// describe says what f does and to which requests, for the log.
func (f Fault) describe() string {
	d := fmt.Sprintf("status=%d count=%d delay=%v drop_connection=%v raw_body=%v", f.Status, max(f.Count, 1), f.Delay, f.DropConnection, f.Body != "")
	if f.Type == "" && f.AccountID == "" {
		return d + " for any token request"
	}
	return d + fmt.Sprintf(" for type=%q account_id=%q only", f.Type, f.AccountID)
}

// aimedAt reports whether f applies to a token request for key.
func (f Fault) aimedAt(key tokenKey) bool {
	return (f.Type == "" || f.Type == key.typ) && (f.AccountID == "" || f.AccountID == key.accountID)
}

// nextFault consumes one use of the oldest queued fault aimed at key.
func (e *Emulator) nextFault(key tokenKey) (Fault, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.faults {
		if !e.faults[i].aimedAt(key) {
			continue
		}
		f := e.faults[i]
		e.faults[i].Count--
		if e.faults[i].Count <= 0 {
			e.faults = append(e.faults[:i:i], e.faults[i+1:]...)
		}
		f.Count = 1
		return f, true
	}
	return Fault{}, false
}
