package sim

import (
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Campaign is the sum of many seeds' runs.
type Campaign struct {
	Params  Params
	Seeds   int
	Elapsed time.Duration
	// CPU is the process's CPU time (user + system) over the campaign: with other work on
	// the machine, wall time says little about the simulator's cost.
	CPU      time.Duration
	CPUs     int
	Workers  int
	KeyDays  float64
	Reads    int
	Served   int
	Requests int
	PeakHour int
	Faults   map[string]int
	// FailedReads counts failed reads by reason.
	FailedReads map[string]int
	// Failing maps an invariant to the seeds that broke it.
	Failing map[string][]uint64
	// Defects maps an issue-16 defect (or another finding) to the seeds whose violations
	// point at it (see classify).
	Defects map[string][]uint64
	Results []Result
}

// RunCampaign runs seeds from first on until budget has passed (or count seeds ran, when
// count > 0), on as many workers as there are CPUs.
func RunCampaign(first uint64, count int, budget time.Duration, p Params) Campaign {
	return runCampaign(first, count, budget, p, nil)
}

// runCampaign is RunCampaign, handing each run to seen (when set) as it ends.
func runCampaign(first uint64, count int, budget time.Duration, p Params, seen func(Result)) Campaign {
	start, cpuStart := time.Now(), processCPU()
	// Seeds wait in real time at concurrent actions' gates (secondWait) without using a
	// CPU: more workers than CPUs keep the CPUs busy meanwhile. Twice as many, not four
	// times: fewer worlds at once share the CPUs' caches better (on 2 CPUs, 48 seeds took
	// 26-28 s of wall time and 1.0-1.1 ms of CPU per key-day with 4 workers, 26-34 s and
	// 1.06-1.39 ms with 8, 31-47 s with 2 or 3).
	workers := 2 * runtime.GOMAXPROCS(0)
	c := Campaign{Params: p, Workers: workers, CPUs: runtime.GOMAXPROCS(0), Faults: map[string]int{}, FailedReads: map[string]int{}, Failing: map[string][]uint64{}, Defects: map[string][]uint64{}}
	var mu sync.Mutex
	next := first
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if (count > 0 && int(next-first) >= count) || (count == 0 && time.Since(start) >= budget) {
					mu.Unlock()
					return
				}
				seed := next
				next++
				mu.Unlock()
				r := Run(seed, p)
				mu.Lock()
				if seen != nil {
					seen(r)
				}
				c.add(r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.Elapsed = time.Since(start)
	c.CPU = processCPU() - cpuStart
	sort.Slice(c.Results, func(i, j int) bool { return c.Results[i].Seed < c.Results[j].Seed })
	for k := range c.Failing {
		sort.Slice(c.Failing[k], func(i, j int) bool { return c.Failing[k][i] < c.Failing[k][j] })
	}
	for k := range c.Defects {
		sort.Slice(c.Defects[k], func(i, j int) bool { return c.Defects[k][i] < c.Defects[k][j] })
	}
	return c
}

func (c *Campaign) add(r Result) {
	c.Seeds++
	c.KeyDays += r.Stats.KeyDays
	c.Reads += r.Stats.Reads
	c.Served += r.Stats.ReadsServed
	c.Requests += r.Stats.NaverRequests
	c.PeakHour = max(c.PeakHour, r.Stats.PeakAppHour)
	for k, n := range r.Stats.Faults {
		c.Faults[k] += n
	}
	for k, n := range r.Stats.FailedReads {
		c.FailedReads[k] += n
	}
	invs, defects := map[string]bool{}, map[string]bool{}
	for _, v := range r.Violations {
		invs[v.Invariant] = true
		defects[classify(v)] = true
	}
	for inv := range invs {
		c.Failing[inv] = append(c.Failing[inv], r.Seed)
	}
	for d := range defects {
		c.Defects[d] = append(c.Defects[d], r.Seed)
	}
	if r.Failed() {
		r.Schedule = nil // keep memory flat: a seed replays its schedule
		c.Results = append(c.Results, r)
	}
}

var (
	naverKey  = regexp.MustCompile(`simApp\d+Client\w*\|(\w+\|[\w]*)`)
	simKey    = regexp.MustCompile(`\(key (\w+\|\w*);`)
	historyRe = regexp.MustCompile(`d\d+\+[\d:]+ ([a-z-]+) [^;]*`)
)

// classify names the defect of issue 16 a violation most likely shows, from the invariant
// and the operator actions before it that touched the violation's key. It is a reading
// aid for the campaign's table, not a proof: replay the seed to be sure.
func classify(v Violation) string {
	if n := classify25(v); n > 0 {
		return itemName(n) + ": " + issue25Items[n]
	}
	switch v.Invariant {
	case invDamagedRole:
		return "16.7 an unreadable role breaks status and cannot be removed"
	case invRoleWrites:
		return "16.8 concurrent role writes lose an update"
	case invStatusTruthful, invStaleWarned:
		return "16.10 a stale token or a back-off without a true warning"
	case invBackoff:
		if strings.Contains(v.Detail, "(200 OK)") {
			return "16.6 an answer whose token cannot be served counts as a success"
		}
		return "backoff: other"
	case invCachedNamed:
		return "16.5 a token published after its role was deleted"
	case invNaverCompliant, invTokenValid:
	default:
		return v.Invariant
	}
	if strings.Contains(v.Detail, "penalised") {
		return "penalty (follows a violation above)"
	}
	if strings.Contains(v.Detail, "had 30m0s left") {
		return "new: after a handed-back token, its truncated expires_in makes the renewal up to 1 s early"
	}
	key := ""
	if m := naverKey.FindStringSubmatch(v.Detail); m != nil {
		key = m[1]
	} else if m := simKey.FindStringSubmatch(v.Detail); m != nil {
		key = m[1]
	}
	var touched []string // kinds of the actions that touched key or every key, oldest first
	for _, h := range historyRe.FindAllStringSubmatch(v.Detail, -1) {
		kind := h[1]
		switch {
		case kind == "concurrent" && strings.Contains(h[0], "token-drop"):
			touched = append(touched, "concurrent-drop")
		case kind == actDropRestart:
			touched = append(touched, actDrop, actRestart)
		case kind == actRestartDrop:
			touched = append(touched, actRestart, actDrop)
		case kind == actRestart, kind == actBaseURL, kind == actConfigDel, kind == actConfigNew, kind == actRotate:
			touched = append(touched, kind)
		case kind == actRoleLease || kind == actRoleTTL || kind == actConfigTune || kind == actInvalidate || kind == actRoleDamage:
			// cannot make the plugin forget a token
		case key != "" && strings.Contains(h[0], "["+key) || strings.Contains(h[0], "→ "+key):
			touched = append(touched, kind)
		}
	}
	last, dropThenRestart, restartThenDrop := "", false, false
	for i, k := range touched {
		last = k
		if k == actRestart && i > 0 && touched[i-1] == actDrop {
			dropThenRestart = true
		}
		if k == actDrop && i > 0 && touched[i-1] == actRestart {
			restartThenDrop = true
		}
	}
	dead := strings.Contains(v.Detail, "killed at Naver")
	switch {
	case dead && strings.Contains(strings.Join(touched, " "), "concurrent-drop"):
		return "16.4 a drop racing a storage load resurrects the dropped token"
	case v.Invariant == invTokenValid && dropThenRestart:
		return "16.3 a restart forgets a drop"
	case v.Invariant == invTokenValid && restartThenDrop:
		return "16.2 a periodic run after a restart forgets a drop"
	case last == actRestart && dropThenRestart && v.Invariant == invNaverCompliant:
		return "16.9 a drop of a live token asks Naver again (16.3: across a restart)"
	case last == actDrop && v.Invariant == invNaverCompliant:
		return "16.9 a drop of a live token asks Naver again"
	case last == actDrop:
		return "16.2/16.3/16.9 a drop forgets what Naver still holds"
	case last == actRoleCreate, last == actRoleDelete, last == actRoleAccount:
		return "16.1 a role deleted and re-created, or switched away and back, forgets the token"
	case last == actBaseURL:
		return "16 (also) a cosmetic base_url change purges every token"
	case last == actConfigDel, last == actConfigNew:
		return "new: config delete and re-create forgets every token"
	}
	return v.Invariant + ": other (" + strings.Join(touched, ", ") + ")"
}

// Markdown renders the campaign as docs/simulation.md.
func (c Campaign) Markdown(command, machine string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Simulation\n\nWritten by `%s` (`internal/sim`, see README \"Simulation\"). %s\n\n", command, machine)
	b.WriteString("| | |\n|---|---:|\n")
	fmt.Fprintf(&b, "| seeds | %d |\n", c.Seeds)
	fmt.Fprintf(&b, "| simulated days per seed | %.1f |\n", c.Params.Days)
	fmt.Fprintf(&b, "| applications × role names × seller accounts per seed | %d × %d × %d |\n", c.Params.Apps, c.Params.RolesPerApp, c.Params.Accounts)
	fmt.Fprintf(&b, "| sellers read through one many-seller role, per application | %d |\n", c.Params.ManySellers)
	fmt.Fprintf(&b, "| keys per application | %d |\n", c.Params.keysPerApp())
	fmt.Fprintf(&b, "| simulated key-days (keys read × days) | %.0f |\n", c.KeyDays)
	fmt.Fprintf(&b, "| wall time, CPU time (user + system), CPUs, workers | %s, %s, %d, %d |\n", c.Elapsed.Round(time.Second), c.CPU.Round(time.Second), c.CPUs, c.Workers)
	fmt.Fprintf(&b, "| token reads (served) | %d (%d) |\n", c.Reads, c.Served)
	fmt.Fprintf(&b, "| requests to Naver | %d |\n", c.Requests)
	if c.KeyDays > 0 {
		fmt.Fprintf(&b, "| Naver requests per key per day | %.2f |\n", float64(c.Requests)/c.KeyDays)
	}
	fmt.Fprintf(&b, "| peak application requests in one clock hour | %d |\n", c.PeakHour)
	failing := 0
	for _, r := range c.Results {
		if r.Failed() {
			failing++
		}
	}
	fmt.Fprintf(&b, "| seeds with violations | %d |\n\n", failing)
	if c.CPU > 0 && c.KeyDays > 0 {
		perCPUSecond := c.KeyDays / c.CPU.Seconds()
		fmt.Fprintf(&b, "Cost: %.2f ms of CPU (user + system) per simulated key-day, %.0f key-days per CPU-second; "+
			"1,000,000 key-days take about %.0f CPU-seconds, %.1f minutes on %d CPUs kept busy. "+
			"The long shape signs with a digest instead of bcrypt on both sides (`FastSignatures`, see docs/decisions.md): bcrypt at cost 04 costs about 1.3 ms per hash, two per request.\n\n",
			1000*c.CPU.Seconds()/c.KeyDays, perCPUSecond, 1e6/perCPUSecond, 1e6/perCPUSecond/float64(c.CPUs)/60, c.CPUs)
	}

	if c.Params.ManySellers > 0 {
		b.WriteString("## The long shape\n\n" +
			"Each seed is one application of about 100 keys for 10 days (`LongParams`): 6 single-account roles over 4 sellers and SELF, with the short campaign's operator and fault mix, " +
			"and 95 sellers read through one many-seller role (`allowed_account_ids` `ncp_app0_many*`, read as `token/sellers/<account>`), whose tokens operators drop as often per seller as they act on a single-account role, " +
			"and whose role is changed, or deleted and re-created, about twice a day. Apps read in spells at a tenth of the short campaign's rate, with the same idle hours; a config an operator deletes is written again within about an hour. " +
			"Naver's per-application limit is set to 3 requests an hour per key (above the plugin's automatic budget of 30 + 2 per key in use). " +
			"Every invariant is checked as in the short campaign: each read's answer and each request to Naver as it happens, the emulator's records after every step, and the operator view and storage every " + fmtEvery(c.Params.operatorViewEvery()) + " and when an operator's status action asks " +
			"(status/<role> of every single-account role; of the many-seller role's sellers, six of those whose last request failed (where a key can be backing off) and four more, both by turns). " +
			"Signatures are a digest on both sides instead of bcrypt (see docs/decisions.md); the short campaign and the corpus keep bcrypt. " +
			"The 10,000-seller week of issue 18 is `go test ./internal/sim -run 'TestSellersWeek$' -count=1 -sellers-week-out=PATH` (in docs/benchmarks.md).\n\n")
	}
	if c.Params.Alphabet > 0 {
		ops := mustDeclaredOps()
		kinds, gs := pairKinds(), gates()
		fmt.Fprintf(&b, "## The alphabet generated from the API\n\n"+
			"Besides the workload above, each application draws %g actions an hour from an alphabet read from the backend itself (`alphabet.go`, `alphabet_schedule.go`): "+
			"the %d operations its OpenAPI document declares (every path × operation, `TestAlphabetCoversTheAPI` fails on one the generator cannot make), with arguments drawn from the field schemas (valid values mostly, one refused value in ten); "+
			"episodes of a few operations on one role within minutes, often under a storage failure of its role or token; a setting written to one value and back (a flap); "+
			"pairs of actions, the first held at one of %d gates (each storage operation on each prefix of %v, on the way to Naver, on the way back) while the second runs, from %d kinds (every operation, a restart, Vault's periodic call, an invalidation): %d pairs, drawn alike, and reads of one key held on their way to Naver; "+
			"storage failures of each operation on each prefix; `Retry-After` storms with an app retrying every second; onboarding storms of new accounts, authorised or refused, through a many-seller or `*` role; crash loops; lease renewals and revocations. "+
			"A delete of the config or a role is followed by its re-creation, as an operator (or Terraform) would. The alphabet has a stream of its own: a seed's workload is the schedule it was before.\n\n",
			c.Params.Alphabet, len(ops), len(gs), storagePrefixes, len(kinds), len(kinds)*len(gs)*len(kinds))
	}
	b.WriteString("## Faults and actions injected\n\n| kind | count |\n|---|---:|\n")
	// Pairs are counted by kind (first@gate+second) for the generator's coverage tests; the
	// report sums them, beside the count per gate.
	pairs, pairKinds := 0, 0
	for _, k := range sortedKeys(c.Faults) {
		if strings.HasPrefix(k, "op-pair-") && !strings.HasPrefix(k, "op-pair-gate-") {
			pairs += c.Faults[k]
			pairKinds++
			continue
		}
		fmt.Fprintf(&b, "| %s | %d |\n", k, c.Faults[k])
	}
	if pairKinds > 0 {
		fmt.Fprintf(&b, "| op-pair (generated pairs, %d kinds: first action @ gate + second action) | %d |\n", pairKinds, pairs)
	}
	b.WriteString("\n## Reads that failed, by reason\n\nA failed read is no violation while a fault, an operator's change or a budget explains it (see `recovers`).\n\n| reason | reads |\n|---|---:|\n")
	for _, k := range sortedKeys(c.FailedReads) {
		fmt.Fprintf(&b, "| %s | %d |\n", k, c.FailedReads[k])
	}
	b.WriteString("\n## Violations by invariant\n\n| invariant | promise | seeds (first 12) |\n|---|---|---|\n")
	for _, inv := range Invariants {
		seeds := c.Failing[inv.Name]
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", inv.Name, inv.Statement, seedList(seeds))
	}
	b.WriteString("\n## What the violations point at\n\nBy `classify` (the invariant and the last operator action before the violation); replay a seed to be sure.\n\n| finding | seeds (first 12) |\n|---|---|\n")
	for _, k := range sortedKeys(c.Defects) {
		fmt.Fprintf(&b, "| %s | %s |\n", k, seedList(c.Defects[k]))
	}
	return b.String()
}

// processCPU is the CPU time (user + system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func seedList(seeds []uint64) string {
	if len(seeds) == 0 {
		return "none"
	}
	var parts []string
	for i, s := range seeds {
		if i == 12 {
			parts = append(parts, fmt.Sprintf("… (%d seeds)", len(seeds)))
			break
		}
		parts = append(parts, fmt.Sprint(s))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fmtEvery says a period in words: "hour", "half hour", or the duration.
func fmtEvery(d time.Duration) string {
	switch d {
	case time.Hour:
		return "hour"
	case 30 * time.Minute:
		return "half hour"
	}
	return d.String()
}
