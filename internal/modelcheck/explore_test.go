package modelcheck

import (
	"flag"
	"testing"
)

var (
	depthFlag  = flag.Int("depth", 5, "TestExplore: how many events deep")
	statesFlag = flag.Int("max-states", 0, "TestExplore: stop after this many states (0: no limit)")
	worldFlag  = flag.String("world", "", "TestExplore: explore only this world")
)

func TestExplore(t *testing.T) {
	for _, p := range Worlds {
		if *worldFlag != "" && p.Name != *worldFlag {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			res := Explore(p, *depthFlag, *statesFlag, 20)
			t.Logf("depth %d: %d states, %d transitions, in %s (truncated %t)", res.Depth, res.States, res.Transitions, res.Elapsed, res.Truncated)
			for inv, n := range res.ByInvariant {
				t.Logf("%s: %d", inv, n)
			}
			for _, f := range res.Findings {
				t.Error(f)
			}
		})
	}
}
