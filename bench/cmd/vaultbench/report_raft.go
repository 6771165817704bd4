package main

import (
	"fmt"
	"strings"
	"time"
)

// The Raft phase in the report: its goals, its rows of the summary table, its section.

// raftRatioGoal checks target's p50 against floor's at every concurrency of the Raft phase
// (goal: at most 1.05x).
func (r *report) raftRatioGoal(target, floor string) (bool, string) {
	ok := true
	var parts []string
	for _, c := range r.o.raftConcurrency {
		w := r.raft.warm.stats[c]
		x := ratio(w[target].P50, w[floor].P50)
		if x > 1.05 {
			ok = false
		}
		parts = append(parts, fmt.Sprintf("%.3fx at concurrency %d (%s vs %s)", x, c, ms(w[target].P50), ms(w[floor].P50)))
	}
	return ok, strings.Join(parts, ", ")
}

// storageOf is the storage series of a target.
func (r *report) storageOf(target string) storageCost {
	for _, sc := range r.raft.storage {
		if sc.target == target {
			return sc
		}
	}
	return storageCost{target: target, reads: 1}
}

// raftSummaryRows are the Raft phase's rows of the summary table.
func (r *report) raftSummaryRows(b *strings.Builder) {
	if r.raft == nil {
		return
	}
	floors := map[string]string{"token": "no-op", "token lease-free": "no-op lease-free"}
	for _, c := range r.o.raftConcurrency {
		w := r.raft.warm.stats[c]
		for _, t := range raftTargets() {
			note := ""
			if floor, ok := floors[t.name]; ok {
				note = fmt.Sprintf("**%s/%s p50 %.3fx**", t.name, floor, ratio(w[t.name].P50, w[floor].P50))
			}
			fmt.Fprintf(b, "| Raft: %s | %d | %s | %s | %.0f req/s | %s |\n", raftTargetLabel(t.name), c, ms(w[t.name].P50), ms(w[t.name].P99), w[t.name].RPS, note)
		}
	}
	for _, sc := range r.raft.storage {
		disk := "unknown"
		if sc.diskBytes >= 0 {
			disk = byteSize(sc.per1000(float64(sc.diskBytes)))
		}
		fmt.Fprintf(b, "| Raft: storage per 1000 reads of %s | 1 | %s | | | %.0f Raft writes, %.1f KiB Raft log, %s to disk, %.0f leases |\n",
			sc.target, ms(sc.p50), sc.per1000(sc.applies), sc.per1000(sc.logBytes)/1024, disk, sc.per1000(float64(sc.leases)))
	}
}

func raftTargetLabel(name string) string {
	switch name {
	case "token":
		return "warm `navercommerce/token/<role>`, leased"
	case "token lease-free":
		return "warm `navercommerce/token/<role>`, `lease=false`"
	case "no-op":
		return "no-op external plugin, leased"
	case "no-op lease-free":
		return "no-op external plugin, no lease"
	}
	return name + " read"
}

// raftGoals writes the goals of issue 10 that the Raft phase measures.
func (r *report) raftGoals(p func(string, ...any)) {
	if r.raft == nil {
		p("- The Raft-phase goals (lease-free and leased warm reads on integrated storage, storage writes per lease-free read) were not measured in this run (-raft=false).\n")
		return
	}
	ok, detail := r.raftRatioGoal("token lease-free", "no-op lease-free")
	p("- **Lease-free warm read p50 within 1.05x of the lease-free no-op, on Raft**: %s — %s.", yesNo(ok), detail)
	if !ok {
		p(" %s", r.raftMissReason("token lease-free", "no-op lease-free"))
	}
	p("\n")
	ok, detail = r.raftRatioGoal("token", "no-op")
	devOK, devDetail := r.warmGoal()
	p("- **Leased warm read p50 within 1.05x of the leased no-op, on Raft and on the dev server**: %s — Raft: %s; dev server: %s.",
		yesNo(ok && devOK), detail, devDetail)
	if !ok {
		p(" %s", r.raftMissReason("token", "no-op"))
	}
	p("\n")
	free, control := r.storageOf("token lease-free"), r.storageOf("kv-v2")
	p("- **0 storage writes per lease-free warm read**: %s — %d lease-free token reads: %.0f Raft writes, %.0f bytes of Raft log, %d leases",
		yesNo(free.applies == 0 && free.leases == 0), free.reads, free.applies, free.logBytes, free.leases)
	if free.diskBytes >= 0 {
		p(", %d bytes written to disk by Vault", free.diskBytes)
	}
	leased := r.storageOf("token")
	p(" (the leased token read: %.1f Raft writes, %.1f KiB of Raft log and %.1f leases per read).",
		leased.applies/float64(leased.reads), leased.logBytes/float64(leased.reads)/1024, float64(leased.leases)/float64(leased.reads))
	if free.applies != 0 {
		p(" The writes counted are all of Vault's: in the kv-v2 series, whose reads cannot write, Vault wrote %.0f times in the same number of reads, so writes of the lease-free series beyond that are the reads'.", control.applies)
	}
	p("\n")
}

// raftMissReason explains a missed ratio goal with the numbers.
func (r *report) raftMissReason(target, floor string) string {
	var worst []string
	var gaps []time.Duration
	for _, c := range r.o.raftConcurrency {
		t, f := r.raft.warm.stats[c][target], r.raft.warm.stats[c][floor]
		if ratio(t.P50, f.P50) > 1.05 {
			worst = append(worst, fmt.Sprintf("at concurrency %d the p50 is %s above the floor's (throughput %.0f vs %.0f req/s)",
				c, ms(t.P50-f.P50), t.RPS, f.RPS))
			gaps = append(gaps, t.P50-f.P50)
		}
	}
	why := ""
	if target == "token" {
		sc := r.storageOf("token")
		why = fmt.Sprintf(" On Raft each leased read waits for Vault's storage writes (%.1f per read, each synced to disk), so its time follows the disk's, for both paths alike.",
			sc.applies/float64(sc.reads))
	}
	return "Where it is missed: " + strings.Join(worst, "; ") + "." + why + r.pluginWorkNote(gaps)
}

// raftSection is the report's section on the Raft phase.
func (r *report) raftSection(p func(string, ...any)) {
	if r.raft == nil {
		return
	}
	rr := r.raft
	p("## Raft phase: integrated storage on disk\n\n")
	p("A second emulator and a single-node Vault server with integrated storage (Raft) in the bench's temporary\n")
	p("folder on %s (non-dev: initialised with one key share, unsealed; log level warn, no audit device; a Prometheus\n", rr.fileSystem)
	p("telemetry sink for the counters below), both plugins registered by SHA-256 and version, kv-v2 mounted;\n")
	p("%s from start to ready. The dev server is stopped first. Two roles over one account: `%s` (leased, the\n", rr.setup.Round(100*time.Millisecond), warmRole)
	p("default) and `%s` (`lease=false`); the no-op plugin's `token/<name>` is leased, its `leasefree/<name>`\n", warmFreeRole)
	p("returns the same data without a lease. At each concurrency, after an unmeasured %s round per path,\n", r.o.warmupDur)
	p("%d rounds of %s per path in rotating order, as in the dev phase. CPU during these reads: %.0f%% of all\n", r.o.raftRounds, r.o.raftRoundDur, 100*rr.warm.cpuBusy)
	p("cores busy, %.0f%% by processes other than the bench.\n\n", 100*rr.warm.cpuOthers)
	p("| concurrency | path | reads | p50 | p99 | max | req/s | p50 vs its floor | p50 vs kv-v2 |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	floors := map[string]string{"token": "no-op", "no-op": "no-op", "token lease-free": "no-op lease-free", "no-op lease-free": "no-op lease-free", "kv-v2": "kv-v2"}
	for _, c := range r.o.raftConcurrency {
		w := rr.warm.stats[c]
		for _, t := range raftTargets() {
			s := w[t.name]
			p("| %d | %s | %d | %s | %s | %s | %.0f | %.3fx | %.2fx |\n", c, t.name, s.N, ms(s.P50), ms(s.P99), ms(s.Max), s.RPS,
				ratio(s.P50, w[floors[t.name]].P50), ratio(s.P50, w["kv-v2"].P50))
		}
	}
	p("\n### What a read leaves in storage\n\n")
	p("After the warm reads, each path is read %d times in a row (concurrency 1, one path at a time). Raft writes\n", r.o.storageReads)
	p("are the growth of `vault_raft_apply` (every storage write is one Raft log entry), Raft log bytes the growth\n")
	p("of `vault_raft_boltdb_logSize_sum` (the size of the entries stored), both from `sys/metrics?format=prometheus`;\n")
	p("leases are counted with `LIST sys/leases/lookup/<path>/`. The counters are Vault's, so anything Vault writes\n")
	p("on its own meanwhile counts too: the kv-v2 series, whose reads write nothing, shows how much. Written to\n")
	p("disk is `write_bytes` of the Vault process's `/proc/PID/io` (the data folder is on %s): BoltDB writes whole\n", rr.fileSystem)
	p("pages (and its list of free pages) for the Raft log and for the state the log is applied to, and syncs\n")
	p("them on every write, so this is many times the log's size.\n\n")
	p("| path | reads | p50 | Raft writes per 1000 reads | Raft log per 1000 reads | written to disk per 1000 reads | leases per 1000 reads |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range rr.storage {
		disk := "unknown"
		if sc.diskBytes >= 0 {
			disk = byteSize(sc.per1000(float64(sc.diskBytes)))
		}
		p("| %s | %d | %s | %.0f | %.1f KiB | %s | %.0f |\n", sc.target, sc.reads, ms(sc.p50), sc.per1000(sc.applies), sc.per1000(sc.logBytes)/1024, disk, sc.per1000(float64(sc.leases)))
	}
	p("\n")
}

// byteSize formats a byte count in KiB, or MiB from 10 MiB on.
func byteSize(n float64) string {
	if n >= 10<<20 {
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", n/1024)
}
