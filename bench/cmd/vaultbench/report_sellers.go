package main

import (
	"fmt"
	"strings"
	"time"
)

// The sellers phase in the report: its rows of the summary table, its goals, its section, and
// the simulated week.

const firstReadGoal = 1.2 // a new seller's first read against (no-op read + signing + round trip)

// firstReadBudget is what a new seller's first read is held to: the no-op plugin's read (the
// same leased read of a seller's path, measured beside it), signing and one emulator round trip.
func (r *report) firstReadBudget() (budget, sign time.Duration, x float64) {
	s := r.raft.sellers
	sign, _ = r.signing()
	budget = s.firstNoop.P50 + sign + s.firstRTT.P50
	return budget, sign, ratio(s.first.P50, budget)
}

// burstFree reports whether the plugin's reload was followed by no Naver request: every
// token was issued minutes before, so none is due for renewal.
func (rr restartResult) burstFree() bool { return rr.readRequests == 0 && rr.watchRequests == 0 }

// durations formats run durations in ms.
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none observed"
	}
	var parts []string
	for _, d := range ds {
		parts = append(parts, ms(d))
	}
	return strings.Join(parts, ", ")
}

// storageTotal is the plugin's stored bytes (sampled means times counts) over all folders.
func storageTotal(sps []storagePrefix) (entries int, bytes float64) {
	for _, sp := range sps {
		entries += sp.entries
		bytes += sp.bytes * float64(sp.entries)
	}
	return entries, bytes
}

// sellersSummaryRows are the sellers phase's rows of the summary table.
func (r *report) sellersSummaryRows(b *strings.Builder) {
	if r.raft == nil || r.raft.sellers == nil {
		return
	}
	s := r.raft.sellers
	floors := map[string]string{"token": "no-op", "token lease-free": "no-op lease-free"}
	for _, c := range r.o.sellersConcurrency {
		w := s.warm.stats[c]
		for _, t := range sellerTargets(s.n) {
			note := ""
			if floor, ok := floors[t.name]; ok {
				note = fmt.Sprintf("**%s/%s p50 %.3fx**", t.name, floor, ratio(w[t.name].P50, w[floor].P50))
			}
			fmt.Fprintf(b, "| Raft, %d sellers: %s | %d | %s | %s | %.0f req/s | %s |\n", s.n, sellerTargetLabel(t.name), c, ms(w[t.name].P50), ms(w[t.name].P99), w[t.name].RPS, note)
		}
	}
	budget, _, x := r.firstReadBudget()
	fmt.Fprintf(b, "| Raft: a new seller's first read | 1 | %s | %s | | **%.2fx of no-op read + signing + round trip (%s)** |\n", ms(s.first.P50), ms(s.first.P99), x, ms(budget))
	fmt.Fprintf(b, "| Raft: plugin RSS, %d sellers' tokens cached | | | | | %.1f MiB |\n", s.n, mib(s.rss))
	_, bytes := storageTotal(s.storage)
	fmt.Fprintf(b, "| Raft: plugin's stored bytes per seller | | | | | %.0f B of values; onboarding: %.1f Raft writes, %.0f B of Raft log per seller |\n",
		bytes/float64(s.n), s.warmupRaft.applies/float64(s.n-s.first.N), s.warmupRaft.logBytes/float64(s.n-s.first.N))
	fmt.Fprintf(b, "| Raft: periodic run, %d tokens in memory | | %s | | | Vault's rollback metric for the mount |\n", s.n, durations(s.periodic))
	rr := s.restart
	fmt.Fprintf(b, "| Raft: plugin reload, %d tokens stored: first read served | | %s | | | all %d read in %s; %d + %d Naver requests during and %s after |\n",
		s.n, rr.firstRead.Round(time.Millisecond), s.n, rr.allRead.Round(time.Millisecond), rr.readRequests, rr.watchRequests, rr.watch.Round(time.Second))
}

// bytesOf formats a byte count in bytes below 10 KiB, else as byteSize.
func bytesOf(n float64) string {
	if n < 10<<10 {
		return fmt.Sprintf("%.0f B", n)
	}
	return byteSize(n)
}

func fsmPerSeller(s *sellersResult) string {
	n := s.n - s.first.N // the warm-up's sellers
	if s.fsmGrowth < 0 || n <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.0f B", float64(s.fsmGrowth)/float64(n))
}

func sellerTargetLabel(name string) string {
	switch name {
	case "token":
		return "warm `navercommerce/token/sellers/<account_id>`, leased"
	case "token lease-free":
		return "warm `navercommerce/token/sellers-free/<account_id>`, `lease=false`"
	case "no-op":
		return "no-op `token/sellers/<account_id>`, leased"
	case "no-op lease-free":
		return "no-op `leasefree/sellers/<account_id>`, no lease"
	}
	return name
}

// sellersGoals writes the goals of issue 18 that the sellers phase measures.
func (r *report) sellersGoals(p func(string, ...any)) {
	if r.raft == nil || r.raft.sellers == nil {
		p("- The many-seller goals (a new seller's first read on Raft within %.1fx of the no-op read + signing + one round trip; a cold start without a burst of Naver requests) were not measured in this run (-raft=false or -sellers=0).\n", firstReadGoal)
		return
	}
	s := r.raft.sellers
	budget, sign, x := r.firstReadBudget()
	_, signSrc := r.signing()
	p("- **A new seller's first read on Raft within %.1fx of (the no-op plugin's read + signing + one emulator round trip)**: %s — first read p50 %s = %.2fx of %s (no-op read %s + signing %s [%s] + round trip %s), over %d new sellers of a many-seller role (leased).",
		firstReadGoal, yesNo(x <= firstReadGoal), ms(s.first.P50), x, ms(budget), ms(s.firstNoop.P50), ms(sign), signSrc, ms(s.firstRTT.P50), s.first.N)
	if x > firstReadGoal {
		p(" The rest, %s beyond the sum, is the plugin's own part of a cold read on Raft: its storage round trips for a new key (each write a Raft apply, synced to disk) and the work around them.",
			ms(s.first.P50-budget))
	}
	// The Go benchmark ran minutes earlier, perhaps under other load: say what the signing
	// timed beside the first reads gives when the two disagree.
	if inPhase := s.firstSign.P50; inPhase > 0 && (ratio(sign, inPhase) > 1.25 || ratio(inPhase, sign) > 1.25) {
		b2 := s.firstNoop.P50 + inPhase + s.firstRTT.P50
		p(" With the signing timed beside the first reads instead (the bench's signer, %s), the sum is %s and the ratio %.2fx.", ms(inPhase), ms(b2), ratio(s.first.P50, b2))
	}
	p("\n")
	rr := s.restart
	p("- **A cold start without a burst of Naver requests**: %s — after a plugin reload with %d tokens stored, the first read was answered %s after the reload began and all %d sellers were read once %s after it; the emulator saw %d token requests during those reads and %d in the %s after (none was due for renewal).\n",
		yesNo(rr.burstFree()), s.n, rr.firstRead.Round(time.Millisecond), s.n, rr.allRead.Round(time.Millisecond), rr.readRequests, rr.watchRequests, rr.watch.Round(time.Second))
	// Issue 25's goals, set with the decision core.
	p("- **Plugin RSS at most %d MiB with %d sellers' tokens cached on Raft**: %s — %.1f MiB (VmRSS; the no-op plugin, which holds nothing, %.1f MiB).\n",
		sellersRSSGoalMiB, s.n, yesNo(mib(s.rss) <= sellersRSSGoalMiB), mib(s.rss), mib(s.noopRSS))
	if len(rr.periodic) > 0 {
		p("- **The first periodic run after a reload with %d tokens stored within %s**: %s — %s (Vault's measurement of the mount's rollback; it reads what is due, and the stored tokens a part at a time).\n",
			s.n, firstPeriodicGoal, yesNo(rr.periodic[0] <= firstPeriodicGoal), rr.periodic[0].Round(time.Millisecond))
	}
}

// Issue 25's goals for the sellers phase (at 10,000 sellers).
const (
	sellersRSSGoalMiB = 48
	firstPeriodicGoal = time.Second
)

// sellersSection is the report's section on the sellers phase.
func (r *report) sellersSection(p func(string, ...any)) {
	if r.raft == nil || r.raft.sellers == nil {
		return
	}
	s := r.raft.sellers
	rr := s.restart
	p("## %d sellers of one application, on Raft\n\n", s.n)
	p("On the Raft phase's server and emulator, after its measurements: one application that %d sellers authorised\n", s.n)
	p("(account IDs `ncp_bench_00000` ...), read as a solution provider would, through two many-seller roles with\n")
	p("`allowed_account_ids=[\"*\"]`: `%s` (leased, the default) and `%s` (`lease=false`), read as\n", sellersRole, sellersFreeRole)
	p("`navercommerce/token/<role>/<account_id>`. The emulator's hourly limit per application is raised to %d token\n", r.o.naverAppPerHour())
	p("requests (`-penalty-requests-per-hour`; over it, it penalises as Naver would); the plugin's application budget is\n")
	p("its automatic one (30 + 2 per key in use) unless the warm-up below had to raise it. The no-op plugin answers\n")
	p("`token/<name>/<account_id>` (leased) and `leasefree/<name>/<account_id>` for any seller with the same fields and size.\n\n")

	p("### A new seller's first read\n\n")
	budget, sign, x := r.firstReadBudget()
	_, signSrc := r.signing()
	p("%d sellers never read before are read once each through `%s` (leased): the plugin signs, asks the emulator\n", s.first.N, sellersRole)
	p("once, stores the token and answers. Each first read is followed by a read of the same seller's path of the no-op\n")
	p("plugin (leased: Vault's own cost of a leased external-plugin read on Raft) and by a raw signed token request from the\n")
	p("bench to the emulator for another new account, timed alone, as in the dev phase's cold reads. Each read starts\n")
	p("%s after the last one ended, with Raft's log idle: the plugin writes a new token 20 ms after the read it answered\n", quietRaft)
	p("(after that read's lease), and read back to back that write would land in whichever read came next.\n\n")
	p("| | n | p50 | p99 | max |\n|---|---:|---:|---:|---:|\n")
	p("| first read `navercommerce/token/%s/<account_id>` | %d | %s | %s | %s |\n", sellersRole, s.first.N, ms(s.first.P50), ms(s.first.P99), ms(s.first.Max))
	p("| no-op read `noop/token/%s/<account_id>`, leased | %d | %s | %s | %s |\n", sellersRole, s.firstNoop.N, ms(s.firstNoop.P50), ms(s.firstNoop.P99), ms(s.firstNoop.Max))
	p("| signing, cost 4 (%s) | | %s | | |\n", signSrc, ms(sign))
	p("| signing, cost 4 (the bench's own signer, during the phase) | %d | %s | %s | %s |\n", s.firstSign.N, ms(s.firstSign.P50), ms(s.firstSign.P99), ms(s.firstSign.Max))
	p("| upstream round trip (raw POST to the emulator) | %d | %s | %s | %s |\n", s.firstRTT.N, ms(s.firstRTT.P50), ms(s.firstRTT.P99), ms(s.firstRTT.Max))
	p("| no-op read + signing + round trip | | %s | | |\n", ms(budget))
	p("| first read − that: the plugin's own part | | %s | | |\n", ms(s.first.P50-budget))
	p("| first read / (no-op read + signing + round trip) | | **%.2fx** (goal ≤ %.1fx) | | |\n\n", x, firstReadGoal)

	p("### Warm-up: every other seller's first token\n\n")
	p("The other %d sellers are read once each through `%s`, %d reads at a time: %s, %.0f sellers/s; the emulator\n",
		s.n-s.first.N, sellersFreeRole, s.warmupWorkers, s.warmup.Round(time.Millisecond), float64(s.n-s.first.N)/s.warmup.Seconds())
	p("saw %d token requests for them.", s.warmupRequests)
	if s.refused > 0 {
		p(" **The plugin's application budget refused %d of these reads** (one application onboarding %d sellers at once\n", s.refused, s.n)
		p("asks more in an hour than its automatic budget allows); the bench then set `max_application_requests_per_hour=%d`,\n", s.raisedBudget)
		p("as an operator onboarding many sellers at once would, and read them again. One refusal as the reader saw it:\n\n")
		p("```\n%s\n```\n\n", strings.TrimSpace(s.refusedExample))
	} else {
		p(" The plugin's application budget refused none of them (its automatic budget grows by 2 with\n")
		p("each new key, each asking once).\n\n")
	}

	p("### Warm reads spread over %d sellers\n\n", s.n)
	p("Every read names one of the %d sellers at random (each worker its own random sequence), so the reads fall on\n", s.n)
	p("all the keys; the no-op plugin's paths name the same sellers. At each concurrency, after an unmeasured %s round\n", r.o.warmupDur)
	p("per path, %d rounds of %s per path in rotating order, as in the other phases. CPU during these reads: %.0f%% of\n", r.o.sellersRounds, r.o.raftRoundDur, 100*s.warm.cpuBusy)
	p("all cores busy, %.0f%% by processes other than the bench.\n\n", 100*s.warm.cpuOthers)
	p("| concurrency | path | reads | p50 | p99 | max | req/s | p50 vs its floor |\n|---:|---|---:|---:|---:|---:|---:|---:|\n")
	floors := map[string]string{"token": "no-op", "no-op": "no-op", "token lease-free": "no-op lease-free", "no-op lease-free": "no-op lease-free"}
	for _, c := range r.o.sellersConcurrency {
		w := s.warm.stats[c]
		for _, t := range sellerTargets(s.n) {
			st := w[t.name]
			p("| %d | %s | %d | %s | %s | %s | %.0f | %.3fx |\n", c, sellerTargetLabel(t.name), st.N, ms(st.P50), ms(st.P99), ms(st.Max), st.RPS, ratio(st.P50, w[floors[t.name]].P50))
		}
	}
	p("\n")

	p("### Memory, storage and the periodic run with %d sellers\n\n", s.n)
	p("| | |\n|---|---|\n")
	p("| plugin RSS (VmRSS) / peak (VmHWM), every seller's token cached | %.1f MiB / %.1f MiB |\n", mib(s.rss), mib(s.hwm))
	p("| for comparison: the no-op plugin's RSS | %.1f MiB |\n", mib(s.noopRSS))
	for _, sp := range s.storage {
		if !strings.HasSuffix(sp.prefix, "/") {
			p("| plugin's entry `%s` | %.0f bytes |\n", sp.prefix, sp.bytes)
			continue
		}
		p("| plugin's entries under `%s` | %d entries, %.0f bytes each on average (%d sampled), %s in all |\n", sp.prefix, sp.entries, sp.bytes, sp.sampled, bytesOf(sp.bytes*float64(sp.entries)))
	}
	entries, bytes := storageTotal(s.storage)
	p("| plugin's stored values per seller | %.0f bytes (%d entries, %s in all, over %d sellers) |\n", bytes/float64(s.n), entries, bytesOf(bytes), s.n)
	warmed := float64(s.n - s.first.N)
	p("| Raft writes during the lease-free warm-up, per seller | %.1f (%.0f in all: the token, the application's request count, and Vault's own) |\n", s.warmupRaft.applies/warmed, s.warmupRaft.applies)
	p("| Raft log written during the warm-up, per seller | %.0f bytes (%s in all) |\n", s.warmupRaft.logBytes/warmed, bytesOf(s.warmupRaft.logBytes))
	if s.fsmGrowth >= 0 {
		p("| growth of Vault's state file (`vault.db`) during the warm-up | %s, %s per seller (BoltDB grows the file in steps: %s after the warm-up, leases of the earlier phases included) |\n",
			bytesOf(float64(s.fsmGrowth)), fsmPerSeller(s), bytesOf(float64(s.fsmSize)))
	}
	p("| the plugin's periodic run, every token in memory | %s |\n", durations(s.periodic))
	p("| the periodic runs in the %s after the reload (below; the first after a start sweeps every stored token) | %s |\n\n", rr.watch.Round(time.Second), durations(rr.periodic))
	p("Entries are counted with `LIST sys/raw/logical/<mount UUID>/<folder>` (the server has `raw_storage_endpoint = true`)\n")
	p("and their sizes are the lengths of up to %d values per folder read through `sys/raw` (decrypted, before the\n", storageSample)
	p("barrier's encryption adds its own bytes and BoltDB its pages). Raft writes and log bytes are the growth of\n")
	p("`vault_raft_apply` and `vault_raft_boltdb_logSize_sum` over the warm-up, whose reads are lease-free, so they are the\n")
	p("plugin's writes for new sellers (and whatever Vault wrote meanwhile); the state file's growth over the same time\n")
	p("is a coarse figure, as BoltDB grows the file in steps and reuses freed pages. The periodic run's duration is Vault's own measurement of the mount's\n")
	p("rollback (`vault.rollback.attempt.navercommerce-`, with `add_mount_point_rollback_metrics = true`), in which Vault\n")
	p("calls the plugin's periodic function once a minute: the gRPC call and the plugin's work (expired and unnamed keys,\n")
	p("renewals due, the hourly storage sweep and role scan when due).\n\n")

	p("### Cold start: the plugin reloaded with %d tokens stored\n\n", s.n)
	p("`sys/plugins/reload/backend` (plugin=%s) starts a new plugin process, which holds nothing in memory; every\n", pluginName)
	p("seller's token is in storage. Then one read of a random seller, every seller read once (%d at a time, lease-free),\n", s.warmupWorkers)
	p("and %s of waiting, counting the emulator's token requests. Every token was issued minutes before, so none is\n", rr.watch.Round(time.Second))
	p("due for renewal: any request is a burst the restart caused.\n\n")
	p("| | |\n|---|---|\n")
	p("| the reload call | %s |\n", rr.reload.Round(time.Millisecond))
	p("| first read answered, from the reload call | %s (the read itself %s) |\n", rr.firstRead.Round(time.Millisecond), ms(rr.firstReadLat))
	p("| every seller read once, from the reload call | %s (p50 %s, p99 %s, max %s) |\n", rr.allRead.Round(time.Millisecond), ms(rr.reads.P50), ms(rr.reads.P99), ms(rr.reads.Max))
	p("| token requests at the emulator during those reads | %d |\n", rr.readRequests)
	p("| token requests at the emulator in the %s after | %d |\n", rr.watch.Round(time.Second), rr.watchRequests)
	if rr.rss > 0 {
		p("| the new plugin process's RSS once every seller was read | %.1f MiB |\n", mib(rr.rss))
	}
	p("\n")
	if s.penalties > 0 {
		p("**The emulator penalised the application during this phase.**\n\n")
	}
}

// sellersWeekSection includes the simulated week (internal/sim TestSellersWeek), if given.
func (r *report) sellersWeekSection(p func(string, ...any)) {
	p("## A simulated week at 10,000 sellers\n\n")
	if r.sellersWeek == "" {
		p("Not in this run: `internal/sim` has no `TestSellersWeek` (scripts/bench.sh runs it when it does).\n\n")
		return
	}
	p("Written by `go test ./internal/sim -run TestSellersWeek -sellers-week-out=...` (the real backend and emulator on a\n")
	p("fake clock, in process), run by scripts/bench.sh.\n\n")
	p("%s\n\n", demoteHeadings(strings.TrimSpace(r.sellersWeek)))
}

// demoteHeadings drops a leading title and moves the other headings below this section's.
func demoteHeadings(md string) string {
	lines := strings.Split(md, "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "# ") {
		lines = lines[1:]
	}
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			level := len(l) - len(strings.TrimLeft(l, "#"))
			if level < 3 {
				lines[i] = strings.Repeat("#", 3) + l[level:]
			}
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
