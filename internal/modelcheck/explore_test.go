package modelcheck

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

var (
	depthFlag  = flag.Int("depth", 0, "TestExplore: how many events deep (0: each world's TestDepth; -1: each world's Depth, as make check-model)")
	statesFlag = flag.Int("max-states", 0, "TestExplore: stop after this many states (0: no limit)")
	worldFlag  = flag.String("world", "", "TestExplore: explore only this world")
	wholeFlag  = flag.Int("everything-depth", 0, "TestExplore: the depth of the whole alphabet's world, everything (0: as -depth says)")
	reportFlag = flag.String("report", "", "TestExplore: write the results into this Markdown file's model-checker section (docs/simulation.md)")
	codeFlag   = flag.String("code", "", "TestExplore: the version of the code explored, for the report")
)

// TestExplore explores every world of Worlds to its depth (make test: TestDepth; make
// check-model: Depth), failing on any violation of an invariant.
func TestExplore(t *testing.T) {
	var results []Result
	for _, p := range Worlds {
		if *worldFlag != "" && p.Name != *worldFlag {
			continue
		}
		depth := p.TestDepth
		switch {
		case *depthFlag > 0:
			depth = *depthFlag
		case *depthFlag < 0:
			depth = p.Depth
		}
		if *wholeFlag > 0 && p.Name == DefaultParams.Name {
			depth = *wholeFlag
		}
		t.Run(p.Name, func(t *testing.T) {
			res := Explore(p, depth, *statesFlag, 20)
			results = append(results, res)
			t.Logf("depth %d: %d states expanded, %d events tried, in %s (truncated %t)", res.Depth, res.States, res.Transitions, res.Elapsed.Round(time.Millisecond), res.Truncated)
			for inv, n := range res.ByInvariant {
				t.Logf("%s: %d", inv, n)
			}
			for _, f := range res.Findings {
				t.Error(f)
			}
			if res.Truncated {
				t.Error("the exploration stopped at -max-states before its depth")
			}
		})
	}
	if *reportFlag != "" {
		if err := writeReport(*reportFlag, results); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	reportStart = "<!-- model checker: written by make check-model -->"
	reportEnd   = "<!-- /model checker -->"
)

// writeReport puts the results into path's model-checker section, between its markers
// (appended at the end when the file has none); the rest of the file stays as it is.
func writeReport(path string, results []Result) error {
	var b strings.Builder
	b.WriteString(reportStart + "\n")
	b.WriteString("## Model checker\n\n")
	fmt.Fprintf(&b, "Written by `make check-model` (`internal/modelcheck`, see README \"Model checker\") on %s, %s/%s with %d CPUs, %s. Code: %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.Version(), *codeFlag)
	b.WriteString("Every sequence of events up to the depth, from a new world (one application with two secrets and an unreachable base URL; sellers `a`, read through the single-account role `one`, `b` and `x`, read through the many-seller role `many` (`*`), `x` not authorised at Naver; storage and Naver as models), each state once; every invariant checked after every event. A world of one concern has a smaller alphabet, so it is explored deeper.\n\n")
	b.WriteString("| world | events | Naver's and storage's outcomes | depth | states expanded | events tried | violations | time |\n|---|---|---|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		events, outcomes := "all", "all"
		if r.Params.Events != nil {
			events = strings.Join(r.Params.Events, ", ")
		}
		if r.Params.Outcomes != nil {
			outcomes = strings.Join(r.Params.Outcomes, ", ")
		}
		v := 0
		for _, n := range r.ByInvariant {
			v += n
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %s |\n", r.Params.Name, events, outcomes, r.Depth, r.States, r.Transitions, v, r.Elapsed.Round(time.Second))
	}
	b.WriteString("\nThe invariants, by name, are in `internal/modelcheck/invariants.go`; the data-driven scripts that pin a sequence each (issue 25's items among them) in `internal/core/testdata`.\n")
	b.WriteString(reportEnd + "\n")

	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	if i, j := strings.Index(s, reportStart), strings.Index(s, reportEnd); i >= 0 && j > i {
		s = s[:i] + b.String() + s[j+len(reportEnd)+1:]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + b.String()
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
