package navercommercetest

import (
	"sync"
	"time"
)

// Clock is a clock that moves only when told, for Config.Now: share one between the
// emulator and the code under test, and time rules (the 5-minute window, the 30-minute
// reuse rule, expiry) are tested without sleeping. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock that reads t until it is advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
