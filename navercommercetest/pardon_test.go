package navercommercetest_test

import (
	"net/http"
	"testing"
	"time"
)

// A pardoned offence starts no penalty and does not count against the violations allowed;
// it stays recorded. A penalty already running before it is left as it is.
func TestPardonForgivesTheLastOffence(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	srv := newTestServer(t, clock)
	emu := srv.Emulator
	postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	clock.Advance(time.Hour)
	since := clock.Now()
	wantStatus(t, postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())), http.StatusOK) // needless
	if _, penalised := emu.Penalty(clientID); !penalised {
		t.Fatal("the needless request started no penalty")
	}
	emu.Pardon(clientID, since)
	if st, penalised := emu.Penalty(clientID); penalised {
		t.Fatalf("still penalised after the pardon: %+v", st)
	}
	if n := len(emu.Violations()); n != 1 {
		t.Errorf("%d violations recorded, want the pardoned one kept", n)
	}
	clock.Advance(time.Second)
	wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)

	// A later offence is penalised as a first one; a pardon given for an offence after the
	// penalty began leaves it running.
	clock.Advance(time.Minute)
	wantStatus(t, postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())), http.StatusOK) // needless again
	clock.Advance(time.Second)
	emu.Pardon(clientID, clock.Now())
	if _, penalised := emu.Penalty(clientID); !penalised {
		t.Error("a pardon for a later moment ended the penalty that was running")
	}
}
