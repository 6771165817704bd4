package sim

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	seedFlag     = flag.Uint64("seed", 0, "TestSim: replay this one seed")
	daysFlag     = flag.Float64("days", 0, "simulated days per seed (0: the default of the test)")
	campaignFlag = flag.Duration("campaign", 0, "TestCampaign: run seeds for this long and write -campaign-out")
	campaignOut  = flag.String("campaign-out", "", "TestCampaign: the Markdown report to write (docs/simulation.md)")
	firstSeed    = flag.Uint64("first-seed", 1, "TestCampaign: the first seed")
	campaignCode = flag.String("campaign-code", "", "TestCampaign: the version of the code under test, for the report")
	campaignN    = flag.Int("campaign-seeds", 0, "TestCampaign: run this many seeds, however long they take, instead of -campaign's time (to compare the cost of two versions on the same seeds)")
	shapeFlag    = flag.String("shape", "", `the run's shape: "default" (DefaultParams, TestSim's default) or "long" (LongParams, TestCampaign's default)`)
	shrinkFlag   = flag.Duration("shrink", time.Minute, "TestSim -seed: how long to look for a shorter failing schedule (0: do not)")
	shrinkInv    = flag.String("shrink-invariant", "", "TestSim -seed: the invariant the shorter schedule must still break (default: the first one broken)")
)

// knownDefectsFixed says whether the defects of issue 16 are fixed on this branch. While
// they are not, the short campaign and the corpus report what they find and skip instead
// of failing (SIM_STRICT=1 makes them fail); flip it when the fix lands.
const knownDefectsFixed = true

func strict() bool { return knownDefectsFixed || os.Getenv("SIM_STRICT") == "1" }

// TestSim replays one seed (-seed=N) or runs the short campaign: a few dozen seeds of
// half a day each, so every `go test ./...` lives a few weeks of Naver.
func TestSim(t *testing.T) {
	if *seedFlag != 0 {
		p := shapeParams(*shapeFlag, "default", t)
		if *daysFlag > 0 {
			p.Days = *daysFlag
		}
		r := Run(*seedFlag, p)
		t.Logf("seed %d: %s", r.Seed, summary(r))
		if !r.Failed() {
			return
		}
		report := failureReport(r)
		if *shrinkFlag > 0 {
			target := r.Violations[0].Invariant
			if *shrinkInv != "" {
				target = *shrinkInv
			}
			s := ShrinkTo(r, *shrinkFlag, target)
			report += fmt.Sprintf("\nshrunk to %d of %d actions, %.2f days, still breaking %s:\n", len(s.Schedule), len(r.Schedule), s.Params.Days, target)
			for _, a := range s.Schedule {
				report += "  " + a.String() + "\n"
			}
			for _, v := range s.Violations {
				report += "  → " + v.String() + "\n"
			}
		}
		t.Fatal(report)
	}
	p := DefaultParams()
	p.Days = 0.5
	seeds := 24
	switch {
	case testing.Short():
		seeds = 8
	case raceEnabled: // make test: about a minute under -race on 2 cores
		seeds = 16
	}
	c := RunCampaign(1000, seeds, 0, p)
	t.Logf("short campaign: %d seeds, %.0f key-days, %d reads, %d requests to Naver, %s", c.Seeds, c.KeyDays, c.Reads, c.Requests, c.Elapsed.Round(time.Millisecond))
	fail(t, c.Results, false)
}

// TestCorpus replays every seed that ever failed (testdata/seeds.txt), like a fuzz corpus.
func TestCorpus(t *testing.T) {
	if !strict() && os.Getenv("SIM_CORPUS") != "1" {
		// Every seed in it fails on the code before issue 16's fix, by construction.
		t.Skip("the corpus holds the known defects of issue 16: run with SIM_CORPUS=1")
	}
	seeds, err := readCorpus(filepath.Join("testdata", "seeds.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fail(t, runCorpus(seeds), os.Getenv("SIM_CORPUS") == "1")
}

// TestPendingSeeds replays testdata/seeds-pending.txt: seeds that show issue 25's broken
// promises on the code before its fix. Each must still break the promise its note names
// while issue25Fixed is false (a seed that no longer does is reported: the shape moved
// under it); once the fix lands they are moved into seeds.txt, where they must pass.
// Run with SIM_PENDING=1 (not part of make test: they fail by construction).
func TestPendingSeeds(t *testing.T) {
	if os.Getenv("SIM_PENDING") != "1" {
		t.Skip("the seeds of issue 25's broken promises: run with SIM_PENDING=1")
	}
	seeds, err := readCorpus(filepath.Join("testdata", "seeds-pending.txt"))
	if err != nil {
		t.Fatal(err)
	}
	results := runCorpus(seeds)
	byseed := map[uint64]Result{}
	for _, r := range results {
		byseed[r.Seed] = r
	}
	for _, s := range seeds {
		r, ok := byseed[s.seed]
		got := map[int]bool{}
		if ok {
			for _, n := range classifyRun(r) {
				got[n] = true
			}
		}
		switch {
		case openFindings[s.item] && got[s.item]:
			t.Logf("seed %d still shows open %s", s.seed, itemName(s.item))
		case openFindings[s.item]:
			t.Errorf("seed %d no longer shows open %s (%s): move it to seeds.txt", s.seed, itemName(s.item), issue25Items[s.item])
		case issue25Fixed && ok:
			t.Errorf("%s", failureReport(r))
		case !issue25Fixed && !got[s.item]:
			t.Errorf("seed %d no longer shows %s (%s)", s.seed, itemName(s.item), issue25Items[s.item])
		default:
			t.Logf("seed %d shows %s", s.seed, itemName(s.item))
		}
	}
}

// runCorpus replays corpus seeds on as many workers as RunCampaign uses, and returns the
// runs that broke a promise, in the corpus's order.
func runCorpus(seeds []corpusSeed) []Result {
	results := make([]Result, len(seeds))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 4*runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = Run(seeds[i].seed, seeds[i].params)
			}
		}()
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()
	var failed []Result
	for _, r := range results {
		if r.Failed() {
			failed = append(failed, r)
		}
	}
	return failed
}

// fail reports failed runs: as errors when strict (or asked to), otherwise as a log and a
// skip, while issue 16's defects are known and unfixed. Runs that show only issue 25's
// broken promises (known_findings.go) are logged while issue25Fixed is false.
func fail(t *testing.T, failed []Result, asked bool) {
	t.Helper()
	known, failed := splitKnown(failed)
	if len(known) > 0 {
		t.Logf("%d seed(s) showed only known broken promises (issue 25's while issue25Fixed is false, and the open findings of known_findings.go; SIM_STRICT=1 fails on them):\n%s", len(known), knownSummary(known))
		for _, r := range known {
			t.Log(failureReport(r))
		}
	}
	for _, r := range failed {
		if strict() || asked {
			t.Error(failureReport(r))
		} else {
			t.Log(failureReport(r))
		}
	}
	if len(failed) > 0 && !strict() && !asked {
		t.Skipf("%d seed(s) broke promises: the known defects of issue 16 (knownDefectsFixed is false; SIM_STRICT=1 fails)", len(failed))
	}
}

// TestCampaign is `make sim`: seeds for -campaign, and the report in -campaign-out.
func TestCampaign(t *testing.T) {
	if *campaignFlag == 0 && *campaignN == 0 {
		t.Skip("run with -campaign=10m (make sim)")
	}
	p := shapeParams(*shapeFlag, "long", t)
	if *daysFlag > 0 {
		p.Days = *daysFlag
	}
	// The campaign's garbage is short-lived: collecting it less often saves CPU, which is
	// what bounds how many key-days fit in make sim's minutes.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	c := RunCampaign(*firstSeed, *campaignN, *campaignFlag, p)
	t.Logf("%d seeds, %.0f key-days in %s", c.Seeds, c.KeyDays, c.Elapsed.Round(time.Second))
	if *campaignOut != "" {
		machine := fmt.Sprintf("Run on %s with %d CPUs (GOMAXPROCS), %s, on %s.", runtime.GOOS+"/"+runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.Version(), time.Now().UTC().Format("2006-01-02"))
		if *campaignCode != "" {
			machine += " Code: " + *campaignCode + "."
		}
		cmd := fmt.Sprintf("make sim (go test ./internal/sim -run TestCampaign -campaign=%s -shape=%s -days=%g)", *campaignFlag, shapeName(p), p.Days)
		md := c.Markdown(cmd, machine)
		// The sections written by hand or by scripts/sim-planted.sh: keep them.
		if old, err := os.ReadFile(*campaignOut); err == nil {
			if tail := keptSections(string(old)); tail != "" {
				md = strings.TrimRight(md, "\n") + "\n\n" + tail
			}
		}
		if err := os.WriteFile(*campaignOut, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	known, others := splitKnown(c.Results)
	if len(known) > 0 {
		t.Logf("%d seed(s) showed only issue 25's known broken promises:\n%s", len(known), knownSummary(known))
	}
	for _, r := range c.Results {
		t.Log(failureReport(r))
	}
	if len(others) > 0 && strict() {
		t.Errorf("%d seed(s) broke promises", len(others))
	}
}

// shapeParams returns the Params of a shape name ("" means def).
func shapeParams(name, def string, t *testing.T) Params {
	if name == "" {
		name = def
	}
	switch name {
	case "default":
		return DefaultParams()
	case "long":
		return LongParams()
	}
	t.Fatalf("-shape=%q: want default or long", name)
	return Params{}
}

// shapeName names the shape p was made from (its days aside).
func shapeName(p Params) string {
	p.Days = LongParams().Days
	if p == LongParams() {
		return "long"
	}
	return "default"
}

type corpusSeed struct {
	seed   uint64
	params Params
	item   int // seeds-pending.txt: the item of issue 25 it shows ("item=N")
}

// readCorpus reads "seed [days] [long] [workload] [item=N] # note" lines: days of the
// default shape, or the long shape; workload: without the alphabet (the shape every seed
// found before it ran); item: the issue 25 item a pending seed shows.
func readCorpus(path string) ([]corpusSeed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []corpusSeed
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		s := corpusSeed{params: DefaultParams()}
		if s.seed, err = strconv.ParseUint(fields[0], 10, 64); err != nil {
			return nil, fmt.Errorf("%s: seed %q: %w", path, fields[0], err)
		}
		days, workload := 0.0, false
		for _, f := range fields[1:] {
			switch {
			case f == "long":
				s.params = LongParams()
			case f == "workload":
				workload = true
			case strings.HasPrefix(f, "item="):
				if s.item, err = strconv.Atoi(strings.TrimPrefix(f, "item=")); err != nil {
					return nil, fmt.Errorf("%s: %q: %w", path, f, err)
				}
			default:
				if days, err = strconv.ParseFloat(f, 64); err != nil {
					return nil, fmt.Errorf("%s: days %q: %w", path, f, err)
				}
			}
		}
		if days > 0 {
			s.params.Days = days
		}
		if workload {
			s.params.Alphabet = 0
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func summary(r Result) string {
	return fmt.Sprintf("%.0f key-days, %d actions, %d reads (%d served), %d requests to Naver, peak %d/h, %d violations, %s",
		r.Stats.KeyDays, r.Stats.Actions, r.Stats.Reads, r.Stats.ReadsServed, r.Stats.NaverRequests, r.Stats.PeakAppHour, len(r.Violations), r.Elapsed.Round(time.Millisecond))
}

func failureReport(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d broke %d promise(s):\n", r.Seed, len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  %s\n      → %s\n", v, classify(v))
	}
	shape, base := "", DefaultParams()
	if shapeName(r.Params) == "long" {
		shape, base = " -shape=long", LongParams()
	}
	days := ""
	if r.Params.Days != base.Days {
		days = fmt.Sprintf(" -days=%g", r.Params.Days)
	}
	fmt.Fprintf(&b, "replay: go test ./internal/sim -run TestSim -seed=%d%s%s", r.Seed, shape, days)
	return b.String()
}

var (
	sellersWeekOut     = flag.String("sellers-week-out", "", "TestSellersWeek: write the 10,000-seller week's Markdown section to this file")
	sellersWeekSellers = flag.Int("sellers-week-sellers", 10000, "TestSellersWeek: how many sellers")
	sellersWeekDays    = flag.Int("sellers-week-days", 7, "TestSellersWeek: how many days")
)

// TestSellersWeek is issue 18's simulated week (make bench writes it into
// docs/benchmarks.md). It needs -sellers-week-out; it fails if a promise broke or Naver
// penalised the application.
func TestSellersWeek(t *testing.T) {
	if *sellersWeekOut == "" {
		t.Skip("run with -sellers-week-out=PATH")
	}
	wk := RunSellersWeek(*sellersWeekSellers, *sellersWeekDays, sellersWeekOnboarding, sellersWeekReadEvery)
	cmd := "go test ./internal/sim -run 'TestSellersWeek$' -count=1 -sellers-week-out=PATH"
	if *sellersWeekSellers != 10000 {
		cmd = strings.Replace(cmd, " -sellers-week-out", fmt.Sprintf(" -sellers-week-sellers=%d -sellers-week-out", *sellersWeekSellers), 1)
	}
	md := wk.Markdown(cmd)
	if err := os.WriteFile(*sellersWeekOut, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", summary(wk.Result), md)
	if wk.Result.Failed() {
		t.Error(failureReport(wk.Result))
	}
	if wk.Penalised {
		t.Error("Naver penalised the application")
	}
}
