package sim

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Planted defects (scripts/sim-planted.sh): the plugin with one defect of
// testdata/planted/*.patch applied runs the short campaign and the corpus (TestPlanted,
// one JSON file per defect, and one without any: the baseline); TestPlantedTable turns
// the files into docs/simulation.md's "Planted defects". A defect is caught by a seed when
// that seed breaks a promise it did not break without the defect.

var (
	plantedOut  = flag.String("planted-out", "", "TestPlanted: write what the short campaign and the corpus found to this JSON file")
	plantedDir  = flag.String("planted-dir", "", "TestPlantedTable: the directory of TestPlanted's files (baseline.json, <defect>.json, <defect>.status)")
	plantedMD   = flag.String("planted-md", "", "TestPlantedTable: the Markdown file whose \"Planted defects\" section to write (docs/simulation.md)")
	plantedCode = flag.String("planted-code", "", "TestPlantedTable: the version of the code the defects were planted in, for the table")
)

// plantedRun is one run of TestPlanted: where it came from and which promises it broke.
type plantedRun struct {
	Source     string   `json:"source"` // "campaign" or "corpus"
	Seed       uint64   `json:"seed"`
	Shape      string   `json:"shape"`
	Invariants []string `json:"invariants"`
	// First is the first violation of each invariant, for the table's detail.
	First map[string]string `json:"first,omitempty"`
	// Elapsed is the wall time from the start to the end of the run.
	Elapsed time.Duration `json:"elapsed_ns"`
}

type plantedReport struct {
	Budget time.Duration `json:"budget_ns"`
	Runs   []plantedRun  `json:"runs"`
}

// TestPlanted runs the corpus, then the short campaign (seeds of half a day from 1000 on)
// for -campaign (2 minutes when unset) more, and writes every run to -planted-out.
func TestPlanted(t *testing.T) {
	if *plantedOut == "" {
		t.Skip("run by scripts/sim-planted.sh (-planted-out=FILE)")
	}
	budget := *campaignFlag
	if budget == 0 {
		budget = 2 * time.Minute
	}
	start := time.Now()
	var mu sync.Mutex
	rep := plantedReport{Budget: budget}
	note := func(source, shape string) func(Result) {
		return func(r Result) {
			run := plantedRun{Source: source, Seed: r.Seed, Shape: shape, Elapsed: time.Since(start), First: map[string]string{}}
			for _, v := range r.Violations {
				if _, ok := run.First[v.Invariant]; !ok {
					run.Invariants = append(run.Invariants, v.Invariant)
					d := v.String()
					run.First[v.Invariant] = d[:min(len(d), 300)]
				}
			}
			sort.Strings(run.Invariants)
			mu.Lock()
			rep.Runs = append(rep.Runs, run)
			mu.Unlock()
		}
	}
	var corpus []corpusSeed
	for _, file := range []string{"seeds.txt", "seeds-pending.txt"} {
		seeds, err := readCorpus(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		corpus = append(corpus, seeds...)
	}
	// The corpus on every worker, as TestCorpus runs it; then the campaign for the budget.
	var wg sync.WaitGroup
	next := make(chan corpusSeed)
	for i := 0; i < 4*runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				note("corpus", corpusShape(s.params))(Run(s.seed, s.params))
			}
		}()
	}
	for _, s := range corpus {
		next <- s
	}
	close(next)
	wg.Wait()
	p := DefaultParams()
	p.Days = 0.5
	runCampaign(1000, 0, budget, p, note("campaign", "default 0.5"))
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*plantedOut, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d runs in %s", len(rep.Runs), time.Since(start).Round(time.Second))
}

// corpusShape names a corpus seed's shape as its line would.
func corpusShape(p Params) string {
	s := shapeName(p)
	if p.Alphabet == 0 {
		s += " workload"
	}
	return fmt.Sprintf("%s %g", s, p.Days)
}

// TestPlantedTable writes the "Planted defects" section of -planted-md from -planted-dir.
func TestPlantedTable(t *testing.T) {
	if *plantedDir == "" || *plantedMD == "" {
		t.Skip("run by scripts/sim-planted.sh (-planted-dir=DIR -planted-md=FILE)")
	}
	base, err := readPlanted(filepath.Join(*plantedDir, "baseline.json"))
	if err != nil {
		t.Fatal(err)
	}
	patches, err := filepath.Glob(filepath.Join("testdata", "planted", "*.patch"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nEach defect of `internal/sim/testdata/planted/*.patch` (one line of the plugin) is planted alone in a throwaway worktree, and the corpus (`seeds.txt`, `seeds-pending.txt`) then the short campaign (seeds of half a day from 1000 on) run for %s of wall time (`scripts/sim-planted.sh`). ", plantedHeading, base.Budget.Round(time.Second))
	b.WriteString("A defect is caught by a seed that breaks a promise it did not break without the defect (the baseline: the same runs on the code as it is, whose own findings are issue 25's); the time is the wall time until that seed's run ended, on a machine shared with other work. ")
	if *plantedCode != "" {
		fmt.Fprintf(&b, "Code: %s. ", *plantedCode)
	}
	b.WriteString("A patch that no longer applies (the code moved) is reported as such: re-plant the defect in the new code and update its patch.\n\n")
	b.WriteString("| defect | caught by (invariant: first seed) | time to catch | seeds that caught it |\n|---|---|---:|---:|\n")
	baseline := map[string]map[string]bool{}
	for _, r := range base.Runs {
		baseline[runID(r)] = set(r.Invariants)
	}
	for _, patch := range patches {
		name := strings.TrimSuffix(filepath.Base(patch), ".patch")
		status, _ := os.ReadFile(filepath.Join(*plantedDir, name+".status"))
		if s := strings.TrimSpace(string(status)); s != "" && s != "applied" {
			fmt.Fprintf(&b, "| %s | — (%s) | — | — |\n", name, s)
			continue
		}
		rep, err := readPlanted(filepath.Join(*plantedDir, name+".json"))
		if err != nil {
			fmt.Fprintf(&b, "| %s | — (no result: %v) | — | — |\n", name, err)
			continue
		}
		first := map[string]plantedRun{}
		seeds := 0
		var earliest time.Duration
		for _, r := range rep.Runs {
			caught := false
			for _, inv := range r.Invariants {
				if baseline[runID(r)][inv] {
					continue
				}
				caught = true
				if f, ok := first[inv]; !ok || r.Elapsed < f.Elapsed {
					first[inv] = r
				}
			}
			if caught {
				seeds++
				if earliest == 0 || r.Elapsed < earliest {
					earliest = r.Elapsed
				}
			}
		}
		if len(first) == 0 {
			fmt.Fprintf(&b, "| %s | **not caught** (%d runs) | — | 0 |\n", name, len(rep.Runs))
			continue
		}
		invs := make([]string, 0, len(first))
		for inv := range first {
			invs = append(invs, inv)
		}
		sort.Slice(invs, func(i, j int) bool { return first[invs[i]].Elapsed < first[invs[j]].Elapsed })
		var by []string
		for _, inv := range invs {
			r := first[inv]
			by = append(by, fmt.Sprintf("`%s`: %s %d (%s)", inv, r.Source, r.Seed, r.Shape))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d of %d |\n", name, strings.Join(by, "; "), earliest.Round(time.Second), seeds, len(rep.Runs))
	}
	old, err := os.ReadFile(*plantedMD)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	md := withPlantedSection(string(old), b.String())
	if err := os.WriteFile(*plantedMD, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(b.String())
}

const plantedHeading = "## Planted defects"

// withPlantedSection replaces (or adds) the "Planted defects" section of md.
func withPlantedSection(md, section string) string {
	before, rest, found := strings.Cut(md, plantedHeading)
	if !found {
		return strings.TrimRight(md, "\n") + "\n\n" + strings.TrimRight(section, "\n") + "\n"
	}
	after := ""
	if i := strings.Index(rest, "\n## "); i >= 0 {
		after = rest[i+1:]
	}
	out := before + strings.TrimRight(section, "\n") + "\n"
	if after != "" {
		out += "\n" + after
	}
	return out
}

// keptHeadings start the sections of docs/simulation.md that make sim keeps when it
// rewrites the file: written by hand, or by scripts/sim-planted.sh.
var keptHeadings = []string{modelCheckerStart, issue25Heading, plantedHeading}

// modelCheckerStart opens the section make check-model writes (internal/modelcheck).
const modelCheckerStart = "<!-- model checker: written by make check-model -->"

const issue25Heading = "## Issue 25 on the code before its fix"

// keptSections returns md from the first kept section on ("" when it has none).
func keptSections(md string) string {
	at := -1
	for _, h := range keptHeadings {
		if i := strings.Index(md, h); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return ""
	}
	return strings.TrimRight(md[at:], "\n") + "\n"
}

// plantedSection returns md's "Planted defects" section ("" when it has none).
func plantedSection(md string) string {
	_, rest, found := strings.Cut(md, plantedHeading)
	if !found {
		return ""
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i+1]
	}
	return plantedHeading + strings.TrimRight(rest, "\n") + "\n"
}

func readPlanted(path string) (plantedReport, error) {
	var rep plantedReport
	b, err := os.ReadFile(path)
	if err != nil {
		return rep, err
	}
	return rep, json.Unmarshal(b, &rep)
}

func runID(r plantedRun) string { return fmt.Sprintf("%s %d %s", r.Source, r.Seed, r.Shape) }

func set(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// The section survives make sim's rewrite of the file, and a new table replaces the old.
func TestPlantedSectionIsKept(t *testing.T) {
	md := "# Simulation\n\nfigures\n\n" + plantedHeading + "\n\nold table\n\n## Later\n\nmore\n"
	if got := plantedSection(md); got != plantedHeading+"\n\nold table\n" {
		t.Errorf("plantedSection = %q", got)
	}
	got := withPlantedSection(md, plantedHeading+"\n\nnew table\n")
	if want := "# Simulation\n\nfigures\n\n" + plantedHeading + "\n\nnew table\n\n## Later\n\nmore\n"; got != want {
		t.Errorf("withPlantedSection = %q, want %q", got, want)
	}
	if got := withPlantedSection("# Simulation\n", plantedHeading+"\n\nt\n"); got != "# Simulation\n\n"+plantedHeading+"\n\nt\n" {
		t.Errorf("withPlantedSection on a file without it = %q", got)
	}
	full := "# Simulation\n\ngenerated\n\n" + issue25Heading + "\n\nby hand\n\n" + plantedHeading + "\n\ntable\n"
	if got, want := keptSections(full), issue25Heading+"\n\nby hand\n\n"+plantedHeading+"\n\ntable\n"; got != want {
		t.Errorf("keptSections = %q, want %q", got, want)
	}
	checked := modelCheckerStart + "\n## Model checker\n\nfigures\n<!-- /model checker -->\n\n" + issue25Heading + "\n\nby hand\n"
	if got := keptSections("# Simulation\n\ngenerated\n\n" + checked); got != checked {
		t.Errorf("keptSections with the model checker's section = %q, want %q", got, checked)
	}
}

// Every planted defect still applies to the code as it is: a patch whose lines moved (a
// file split, say) would make scripts/sim-planted.sh report it as not applied, and the
// table would lose that defect's row until someone ran the script.
func TestPlantedDefectsStillApply(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout")
	}
	patches, err := filepath.Glob(filepath.Join("testdata", "planted", "*.patch"))
	if err != nil || len(patches) == 0 {
		t.Fatal("no planted defects", err)
	}
	for _, patch := range patches {
		abs, err := filepath.Abs(patch)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("git", "apply", "--check", abs)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s no longer applies: %v\n%s", filepath.Base(patch), err, out)
		}
	}
}
