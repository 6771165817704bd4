package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestPromSummary(t *testing.T) {
	const exposition = `# TYPE vault_rollback_attempt_navercommerce_ summary
vault_rollback_attempt_navercommerce_{quantile="0.5"} 3.1
vault_rollback_attempt_navercommerce__sum 12.5
vault_rollback_attempt_navercommerce__count 3
vault_rollback_attempt_navercommerce_other__sum 99
vault_rollback_attempt_noop__sum 7
vault_rollback_attempt_noop__count 70
`
	tests := []struct {
		name      string
		metric    string
		wantCount float64
		wantSum   float64
	}{
		{name: "the mount's summary, not a longer mount name's", metric: "vault_rollback_attempt_navercommerce", wantCount: 3, wantSum: 12.5},
		{name: "another mount", metric: "vault_rollback_attempt_noop", wantCount: 70, wantSum: 7},
		{name: "not measured yet is zero", metric: "vault_rollback_attempt_kv", wantCount: 0, wantSum: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := promSummary(strings.NewReader(exposition), tt.metric)
			if err != nil {
				t.Fatal(err)
			}
			if got.count != tt.wantCount || got.sum != tt.wantSum {
				t.Fatalf("got count %v sum %v, want %v and %v", got.count, got.sum, tt.wantCount, tt.wantSum)
			}
		})
	}
}

func TestTargetPathFor(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	single := target{path: "navercommerce/token/warm"}
	if got := single.pathFor(rng); got != "navercommerce/token/warm" {
		t.Fatalf("a target without spread reads %q", got)
	}
	spread := target{path: "navercommerce/token/sellers", spread: 3}
	seen := map[string]bool{}
	for range 200 {
		seen[spread.pathFor(rng)] = true
	}
	want := []string{"navercommerce/token/sellers/ncp_bench_00000", "navercommerce/token/sellers/ncp_bench_00001", "navercommerce/token/sellers/ncp_bench_00002"}
	if len(seen) != len(want) {
		t.Fatalf("200 reads over 3 sellers named %v, want exactly %v", seen, want)
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no read of %s in %v", w, seen)
		}
	}
}

func TestDemoteHeadings(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "# Title\n\nText\n## Part\n### Sub\n#### Deep", want: "Text\n### Part\n### Sub\n#### Deep"},
		{in: "Text only", want: "Text only"},
		{in: "## Part first\nx", want: "### Part first\nx"},
	}
	for _, tt := range tests {
		if got := demoteHeadings(tt.in); got != tt.want {
			t.Errorf("demoteHeadings(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// sellersReport is a report whose sellers phase measured first reads of firstP50 against a
// no-op read of 2 ms, signing of 1 ms (the bench's, no Go benchmark) and a round trip of 1 ms.
func sellersReport(firstP50 time.Duration, requestsAfter int) *report {
	s := &sellersResult{
		n:         100,
		first:     stats{N: 10, P50: firstP50},
		firstNoop: stats{N: 10, P50: 2 * time.Millisecond},
		firstRTT:  stats{N: 10, P50: time.Millisecond},
		firstSign: stats{N: 10, P50: time.Millisecond},
		warm:      warmResult{stats: map[int]map[string]stats{}},
		storage:   []storagePrefix{{prefix: "tokens/", entries: 100, sampled: 10, bytes: 400}, {prefix: "config", entries: 1, sampled: 1, bytes: 190}},
		periodic:  []time.Duration{5 * time.Millisecond},
		restart:   restartResult{watchRequests: requestsAfter, watch: time.Minute},
	}
	r := &report{o: options{sellersConcurrency: []int{1}}, raft: &raftResult{sellers: s}}
	r.benchSign = stats{P50: time.Millisecond}
	return r
}

func TestSellersGoals(t *testing.T) {
	tests := []struct {
		name          string
		firstP50      time.Duration
		requestsAfter int
		want          []string
	}{
		{name: "within 1.2x, no burst", firstP50: 4800 * time.Microsecond,
			want: []string{"within 1.2x of (the no-op plugin's read + signing + one emulator round trip)**: **met** — first read p50 4.800 ms = 1.20x of 4.000 ms", "without a burst of Naver requests**: **met**"}},
		{name: "over 1.2x, a burst", firstP50: 6 * time.Millisecond, requestsAfter: 3,
			want: []string{"**not met** — first read p50 6.000 ms = 1.50x of 4.000 ms", "The rest, 2.000 ms beyond the sum", "without a burst of Naver requests**: **not met**", "0 token requests during those reads and 3 in the 1m0s after"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sellersReport(tt.firstP50, tt.requestsAfter)
			var b strings.Builder
			r.sellersGoals(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
			if strings.Contains(b.String(), "timed beside") {
				t.Errorf("a note on the signing when both timings agree:\n%s", b.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("goals lack %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestSellersGoalSigningDisagrees(t *testing.T) {
	r := sellersReport(6*time.Millisecond, 0)
	r.raft.sellers.firstSign.P50 = 2 * time.Millisecond // the Go benchmark's (benchSign) is 1 ms
	var b strings.Builder
	r.sellersGoals(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
	if w := "With the signing timed beside the first reads instead (the bench's signer, 2.000 ms), the sum is 5.000 ms and the ratio 1.20x."; !strings.Contains(b.String(), w) {
		t.Errorf("goals lack %q:\n%s", w, b.String())
	}
}

func TestSellersSectionAndWeek(t *testing.T) {
	r := sellersReport(5*time.Millisecond, 0)
	var b strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	r.sellersSection(p)
	r.sellersWeekSection(p)
	out := b.String()
	for _, w := range []string{
		"| plugin's entries under `tokens/` | 100 entries, 400 bytes each on average (10 sampled), 39 KiB in all |",
		"| plugin's entry `config` | 190 bytes |",
		"| plugin's stored values per seller | 402 bytes (101 entries, 39 KiB in all, over 100 sellers) |",
		"## A simulated week at 10,000 sellers\n\nNot in this run",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("section lacks %q:\n%s", w, out)
		}
	}
	r.sellersWeek = "# Sellers week\n\n## Requests\n| a | b |"
	b.Reset()
	r.sellersWeekSection(p)
	if out := b.String(); !strings.Contains(out, "### Requests\n| a | b |") || strings.Contains(out, "# Sellers week") {
		t.Errorf("the simulated week is not included under this section's heading:\n%s", out)
	}
}
