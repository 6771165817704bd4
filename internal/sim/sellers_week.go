package sim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// SellersWeek is issue 18's week of a solution provider: one application, sellers
// authorised all at once (every seller's first read within the first minutes), each
// seller's app reading its token now and then around the clock, a few of Naver's
// outages and 5xx or 429 storms, two restarts, and the default config (automatic
// application budget, renewal_spread's default). Every invariant is checked as in any run.
type SellersWeek struct {
	Sellers int
	Days    int
	Result  Result
	// PerMinute holds Naver requests (HTTP attempts) per minute since the start.
	PerMinute []int
	// ReadsRefused: reads refused by the application budget; AppRefusals: every request
	// the application budget refused (the plugin's metric), reads and background renewals.
	ReadsRefused int
	AppRefusals  int
	Penalised    bool
	Faults       []string
}

// sellersWeekSchedule is the week's schedule for n sellers.
func sellersWeekSchedule(n, days int, onboarding, readEvery time.Duration) ([]Action, []string) {
	rng := rand.New(rand.NewPCG(18, 10000))
	horizon := time.Duration(days) * 24 * time.Hour
	acts := []Action{
		{At: 0, Kind: actConfigNew},
		{At: 0, Kind: actRoleCreate, Role: sellersRole},
	}
	for i := 0; i < n; i++ {
		name := sellerPath(0, i)
		t := time.Second + time.Duration(rng.Int64N(int64(onboarding)))
		for t < horizon {
			acts = append(acts, Action{At: t, Kind: actRead, Role: name})
			t += time.Second + time.Duration(rng.ExpFloat64()*float64(readEvery))
		}
	}
	day := func(d int, hh, mm int) time.Duration {
		return time.Duration(d)*24*time.Hour + time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute
	}
	events := []struct {
		act  Action
		what string
	}{
		{Action{At: day(1, 10, 0), Kind: faultOutage, S: "5xx", D: 3 * time.Minute}, "a 3-minute 5xx storm (day 2, 10:00)"},
		{Action{At: day(2, 15, 0), Kind: faultOutage, S: "5xx", D: time.Hour}, "an hour of 5xx (day 3, 15:00)"},
		{Action{At: day(3, 4, 0), Kind: actRestart}, "a restart (day 4, 04:00)"},
		{Action{At: day(4, 9, 0), Kind: faultOutage, S: "429", D: 20 * time.Minute}, "20 minutes of 429 (day 5, 09:00)"},
		{Action{At: day(5, 20, 0), Kind: faultOutage, S: "stall", D: 10 * time.Minute}, "10 minutes without answers (day 6, 20:00)"},
		{Action{At: day(5, 20, 5), Kind: actRestart}, "a restart during it (day 6, 20:05)"},
	}
	var faults []string
	for _, e := range events {
		if e.act.At < horizon {
			acts = append(acts, e.act)
			faults = append(faults, e.what)
		}
	}
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].At < acts[j].At })
	return acts, faults
}

// RunSellersWeek simulates the week for n sellers: onboarded within onboarding, each read
// about every readEvery.
func RunSellersWeek(n, days int, onboarding, readEvery time.Duration) SellersWeek {
	p := Params{Days: float64(days), Apps: 1, ManySellers: n, FastSignatures: true, CountRefusals: true}
	acts, faults := sellersWeekSchedule(n, days, onboarding, readEvery)
	r, w := runWorld(18, p, acts)
	wk := SellersWeek{Sellers: n, Days: days, Result: r, Faults: faults}
	wk.PerMinute = make([]int, days*24*60)
	for m, c := range w.minutely {
		if m >= 0 && int(m) < len(wk.PerMinute) {
			wk.PerMinute[m] += c
		}
	}
	wk.ReadsRefused = r.Stats.FailedReads["the application budget"]
	wk.AppRefusals = int(w.apps[0].appBudgetRefusals)
	_, wk.Penalised = w.emu.Penalty(w.apps[0].clientID)
	for _, v := range r.Violations {
		if v.Invariant == invNaverCompliant && strings.Contains(v.Detail, "penalised") {
			wk.Penalised = true
		}
	}
	return wk
}

// peakAndMean returns the busiest sum of width consecutive minutes (aligned to width) and
// the mean over the window.
func peakAndMean(perMinute []int, width int) (peak int, mean float64) {
	total := 0
	for i := 0; i < len(perMinute); i += width {
		sum := 0
		for j := i; j < i+width && j < len(perMinute); j++ {
			sum += perMinute[j]
		}
		peak = max(peak, sum)
		total += sum
	}
	return peak, float64(total) / (float64(len(perMinute)) / float64(width))
}

// Markdown renders the week as a section of docs/benchmarks.md. It holds only what the
// simulation decides, so the same code writes the same section.
func (wk SellersWeek) Markdown(command string) string {
	var b strings.Builder
	r := wk.Result
	total := 0
	for _, c := range wk.PerMinute {
		total += c
	}
	perSellerDay := float64(total) / float64(wk.Sellers) / float64(wk.Days)
	fmt.Fprintf(&b, "### A simulated week at %d sellers\n\n", wk.Sellers)
	fmt.Fprintf(&b, "Written by `%s` (`internal/sim`, the real backend and emulator on a fake clock; signatures by digest, not bcrypt). "+
		"One application; every seller read through one many-seller role (`allowed_account_ids`), all authorised at once: each seller's first read within the first minutes, then a read about every %s around the clock. "+
		"Default config: automatic application budget, default `renewal_spread`. Faults: %s.\n\n",
		command, readEveryText(wk), strings.Join(wk.Faults, "; "))
	b.WriteString("| | |\n|---|---:|\n")
	fmt.Fprintf(&b, "| sellers, days | %d, %d |\n", wk.Sellers, wk.Days)
	fmt.Fprintf(&b, "| token reads (served) | %d (%d) |\n", r.Stats.Reads, r.Stats.ReadsServed)
	fmt.Fprintf(&b, "| requests to Naver (HTTP attempts) | %d |\n", total)
	fmt.Fprintf(&b, "| Naver requests per seller per day | %.2f |\n", perSellerDay)
	pm, mm := peakAndMean(wk.PerMinute, 1)
	ph, mh := peakAndMean(wk.PerMinute, 60)
	fmt.Fprintf(&b, "| busiest minute / average minute | %d / %.1f (%.1f×) |\n", pm, mm, ratio(pm, mm))
	fmt.Fprintf(&b, "| busiest hour / average hour | %d / %.0f (%.1f×) |\n", ph, mh, ratio(ph, mh))
	fmt.Fprintf(&b, "| refused by the application budget: reads, background renewals | %d, %d |\n", wk.ReadsRefused, max(0, wk.AppRefusals-wk.ReadsRefused))
	penalty := "none"
	if wk.Penalised {
		penalty = "**penalised**"
	}
	fmt.Fprintf(&b, "| Naver's penalty | %s |\n", penalty)
	inv := "all held"
	if r.Failed() {
		var names []string
		for _, v := range r.Violations {
			names = append(names, v.Invariant)
		}
		inv = fmt.Sprintf("**%d violations**: %s", len(r.Violations), strings.Join(names, ", "))
	}
	fmt.Fprintf(&b, "| invariants (checked after every step) | %s |\n\n", inv)
	b.WriteString("By day (day 1 holds the onboarding; each day's faults are listed above):\n\n")
	b.WriteString("| day | requests | per seller | busiest minute / average (×) | busiest hour / average (×) |\n|---:|---:|---:|---:|---:|\n")
	for d := 0; d < wk.Days; d++ {
		day := wk.PerMinute[d*1440 : (d+1)*1440]
		n := 0
		for _, c := range day {
			n += c
		}
		pm, mm := peakAndMean(day, 1)
		ph, mh := peakAndMean(day, 60)
		fmt.Fprintf(&b, "| %d | %d | %.2f | %d / %.1f (%.1f×) | %d / %.0f (%.1f×) |\n", d+1, n, float64(n)/float64(wk.Sellers), pm, mm, ratio(pm, mm), ph, mh, ratio(ph, mh))
	}
	return b.String()
}

func ratio(peak int, mean float64) float64 {
	if mean == 0 {
		return 0
	}
	return float64(peak) / mean
}

func readEveryText(wk SellersWeek) string { return sellersWeekReadEvery.String() }

// The week's shape: onboarding within 5 minutes, a read about every 2 hours.
const (
	sellersWeekOnboarding = 5 * time.Minute
	sellersWeekReadEvery  = 2 * time.Hour
)
