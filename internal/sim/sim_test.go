package sim

import (
	"flag"
	"fmt"
	"strings"
	"testing"
)

var (
	seedFlag = flag.Uint64("seed", 0, "replay one seed (TestSim)")
	daysFlag = flag.Float64("days", 0, "simulated days per seed (0: the default)")
)

func TestSim(t *testing.T) {
	p := DefaultParams()
	if *daysFlag > 0 {
		p.Days = *daysFlag
	}
	if *seedFlag != 0 {
		r := Run(*seedFlag, p)
		t.Logf("seed %d: %s", r.Seed, summary(r))
		if r.Failed() {
			t.Fatal(failureReport(r))
		}
		return
	}
	for seed := uint64(1); seed <= 4; seed++ {
		r := Run(seed, p)
		t.Logf("seed %d: %s", seed, summary(r))
		if r.Failed() {
			t.Error(failureReport(r))
		}
	}
}

func summary(r Result) string {
	return fmt.Sprintf("%.0f key-days, %d actions, %d reads (%d served), %d requests to Naver, peak %d/h, %d violations, %s",
		r.Stats.KeyDays, r.Stats.Actions, r.Stats.Reads, r.Stats.ReadsServed, r.Stats.NaverRequests, r.Stats.PeakAppHour, len(r.Violations), r.Elapsed.Round(1e6))
}

func failureReport(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d broke %d promise(s):\n", r.Seed, len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	fmt.Fprintf(&b, "replay: go test ./internal/sim -run TestSim -seed=%d", r.Seed)
	return b.String()
}
