package core

import (
	"reflect"
	"testing"
	"time"
)

func TestUnixNanoOfMatchesTime(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Now(), time.Now().Round(0), time.Date(2026, 11, 24, 12, 0, 0, 5, time.UTC), time.Unix(0, 0)} {
		want := tm.UnixNano()
		if tm.IsZero() {
			want = 0
		}
		if got := unixNanoOf(reflect.ValueOf(tm)); got != want {
			t.Errorf("%v: %d, want %d", tm, got, want)
		}
	}
}
