package navercommercetest

import "time"

// Pardon forgives the last offence of an application as if it had not been committed, for a
// checker that excuses the request behind it (a simulator's operator made it needless on
// purpose: a forced drop of a token Naver still holds). The offence no longer counts
// against the violations allowed, and a penalty it started (at or after since, on the
// emulator's clock) ends now. It stays in Violations; a penalty that was already running
// before since is left as it is.
func (e *Emulator) Pardon(clientID string, since time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.penalties[clientID]
	if s == nil {
		return
	}
	if n := len(s.violations); n > 0 {
		s.violations = s.violations[:n-1]
	}
	if s.penalised && !s.since.Before(since) {
		s.penalised = false
		s.until = time.Time{}
		s.reason = ""
		s.offender = 0
	}
}
