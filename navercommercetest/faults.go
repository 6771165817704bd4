package navercommercetest

import (
	"fmt"
	"time"
)

// Faults a test injects into the next token requests.

// Fault replaces the normal answer of upcoming token requests. Faults are
// queued and consumed in order, one per token request, before the request is
// validated.
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
}

// InjectFault queues f for the next token requests. It panics on a fault
// that could have no effect or has an impossible status.
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

// ClearFaults drops the faults still queued: an outage ends.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
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
	}
	return nil
}

// nextFault consumes one use of the oldest queued fault.
func (e *Emulator) nextFault() (Fault, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.faults) == 0 {
		return Fault{}, false
	}
	f := e.faults[0]
	e.faults[0].Count--
	if e.faults[0].Count <= 0 {
		e.faults = e.faults[1:]
	}
	f.Count = 1
	return f, true
}
