package navercommercetest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

func checkLatency(fixed, jitter time.Duration) error {
	switch {
	case fixed < 0:
		return fmt.Errorf("latency %v is negative", fixed)
	case jitter < 0:
		return fmt.Errorf("latency jitter %v is negative", jitter)
	}
	return nil
}

// SetLatency changes the hold of token requests arriving from now on: fixed
// plus a uniformly random 0..jitter (see Config.Latency). It panics on a
// negative duration.
func (e *Emulator) SetLatency(fixed, jitter time.Duration) {
	if err := e.setLatency(fixed, jitter); err != nil {
		panic("navercommercetest: " + err.Error())
	}
}

func (e *Emulator) setLatency(fixed, jitter time.Duration) error {
	if err := checkLatency(fixed, jitter); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.latency, e.jitter = fixed, jitter
	return nil
}

// Latency returns the fixed latency and the jitter in effect.
func (e *Emulator) Latency() (fixed, jitter time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.latency, e.jitter
}

// hold sleeps for the latency of one token request. It returns how long it
// held the request and false when the client went away meanwhile (there is
// no one left to answer). It aborts the handler when the server closes, so
// Close does not wait for held requests.
func (e *Emulator) hold(r *http.Request) (time.Duration, bool) {
	fixed, jitter := e.Latency()
	d := fixed
	if jitter > 0 {
		d += rand.N(jitter + 1)
	}
	if d <= 0 {
		return 0, true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, true
	case <-r.Context().Done():
		return d, false
	case <-e.closing:
		panic(http.ErrAbortHandler)
	}
}
