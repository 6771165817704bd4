package core

import (
	"testing"
	"time"
)

// Issue 25, suspected: "a backward clock step keeps per-minute counts alive for its length".
// The application's counts now count a minute ahead of the clock as now; a key's own log of
// requests must do the same, or a step back of the clock locks a key that spent its budget out
// for the step's length plus an hour (Naver's hour, which is real time, ended long before).
func TestClockStepBackKeepsAKeysRequestsOnlyAnHour(t *testing.T) {
	const perHour = 12
	for _, step := range []time.Duration{10 * time.Minute, 2 * time.Hour, 24 * time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			var l requestLog
			for range perHour {
				l.record(origin, perHour, false)
			}
			back := origin.Add(-step)
			if n, _ := l.since(back, time.Hour); n != perHour {
				t.Fatalf("right after the step back: %d requests in the hour, want %d", n, perHour)
			}
			later := back.Add(62 * time.Minute)
			if n, _ := l.since(later, time.Hour); n != 0 {
				t.Errorf("an hour after the step back: %d requests counted in the last hour, want 0", n)
			}
			if next := l.nextPaced(later, perHour); next.After(later) {
				t.Errorf("an hour after the step back, the pace holds the key until %s later", next.Sub(later))
			}
		})
	}
}
