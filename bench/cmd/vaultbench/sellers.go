package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// The sellers phase, on the Raft server: one application that many sellers authorised, read
// through many-seller roles as a solution provider would (token/<role>/<account_id>): new
// sellers' first reads, the warm-up of all of them, warm reads spread over every seller, the
// plugin's memory and storage, the periodic run, and a plugin reload with every token stored.

const (
	sellersRole     = "sellers"      // allowed_account_ids=["*"], leased (the default)
	sellersFreeRole = "sellers-free" // the same sellers, lease=false
)

// sellerTargets are the sellers phase's warm targets: every read names one of n sellers.
func sellerTargets(n int) []target {
	return []target{
		{name: "token", path: "navercommerce/token/" + sellersRole, check: leased, spread: n},
		{name: "no-op", path: "noop/token/" + sellersRole, check: leased, spread: n},
		{name: "token lease-free", path: "navercommerce/token/" + sellersFreeRole, check: leaseFree, spread: n},
		{name: "no-op lease-free", path: "noop/leasefree/" + sellersRole, check: leaseFree, spread: n},
	}
}

// sellersResult is the sellers phase's part of the report.
type sellersResult struct {
	n int
	// First reads of new sellers (leased), each beside a no-op read of a seller and a raw
	// signed request to the emulator for another new account.
	first, firstNoop, firstRTT, firstSign stats
	// The warm-up: every other seller read once (lease-free, workers concurrent reads).
	warmup         time.Duration
	warmupWorkers  int
	warmupRequests int          // token requests the emulator saw for it
	refused        int          // reads the plugin's application budget refused
	refusedExample string       // one refusal, as the reader saw it
	raisedBudget   int          // max_application_requests_per_hour set to finish the warm-up; 0: not needed
	fsmGrowth      int64        // growth of Vault's state file (vault.db) during the warm-up, bytes; -1 unknown
	fsmSize        int64        // its size after the warm-up
	warmupRaft     raftCounters // Raft writes and log bytes during the warm-up
	warm           warmResult
	rss, hwm       int64 // plugin KiB with every seller's token cached
	noopRSS        int64
	storage        []storagePrefix
	periodic       []time.Duration // periodic runs with every token in memory
	restart        restartResult
	violations     []string
	penalties      int
}

// storagePrefix is what the plugin keeps under one folder of its mount.
type storagePrefix struct {
	prefix  string
	entries int
	sampled int
	bytes   float64 // mean value size of the sampled entries
}

// restartResult is the plugin reload with every seller's token stored.
type restartResult struct {
	reload        time.Duration // the reload call
	firstRead     time.Duration // from the reload call to the first read's answer
	firstReadLat  time.Duration // that read's own latency
	allRead       time.Duration // from the reload call until every seller was read once
	reads         stats         // those reads
	readRequests  int           // token requests the emulator saw during those reads
	watch         time.Duration // then idle this long
	watchRequests int           // token requests the emulator saw meanwhile
	periodic      []time.Duration
	rss           int64
}

// sellers runs the phase on e (the Raft server, set up).
func (e *env) sellers(dataDir string) (*sellersResult, error) {
	o := e.o
	res := &sellersResult{n: o.sellers, warmupWorkers: 16, fsmGrowth: -1}
	ctx := e.ctx
	for role, lease := range map[string]bool{sellersRole: true, sellersFreeRole: false} {
		if _, err := e.c.Logical().WriteWithContext(ctx, "navercommerce/roles/"+role, map[string]any{
			"type": "SELLER", "allowed_account_ids": []string{"*"}, "lease": lease,
		}); err != nil {
			return nil, fmt.Errorf("writing the role %s: %w", role, err)
		}
	}
	first := min(o.sellersFirst, o.sellers)
	if err := e.sellersFirstReads(res, first); err != nil {
		return nil, fmt.Errorf("first reads: %w", err)
	}
	if err := e.sellersWarmup(res, first, dataDir); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	var err error
	logf("sellers: warm reads spread over %d sellers", o.sellers)
	if res.warm, err = e.measureWarm(sellerTargets(o.sellers), o.sellersConcurrency, o.sellersRounds, o.raftRoundDur); err != nil {
		return nil, fmt.Errorf("warm reads: %w", err)
	}
	if res.rss, err = statusKiB(e.pluginPID, "VmRSS"); err != nil {
		return nil, err
	}
	res.hwm, _ = statusKiB(e.pluginPID, "VmHWM")
	res.noopRSS, _ = statusKiB(e.noopPID, "VmRSS")
	if res.storage, err = e.pluginStorage(); err != nil {
		return nil, fmt.Errorf("counting the plugin's storage: %w", err)
	}
	logf("sellers: plugin RSS %.1f MiB; waiting for a periodic run", mib(res.rss))
	if res.periodic, err = e.periodicRuns(1, 75*time.Second); err != nil {
		return nil, err
	}
	if err := e.sellersRestart(res); err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	st, err := e.em.Stats()
	if err != nil {
		return nil, err
	}
	res.violations, res.penalties = st.Violations, len(st.Penalties)
	return res, nil
}

// quietRaft is the pause before each read of the first-read phase, so that each starts with
// Raft's log idle: the plugin writes a new token 20 ms after the read it answered (after
// that read's lease), and back to back that write would land in the next read measured,
// a first read or the no-op read it is compared with, whichever came next.
const quietRaft = 50 * time.Millisecond

// sellersFirstReads reads n new sellers once each (leased), each beside a no-op read of the
// same seller and a raw signed request to the emulator for another new account, each read
// after a pause (quietRaft).
func (e *env) sellersFirstReads(res *sellersResult, n int) error {
	logf("sellers: %d first reads of new sellers, each beside a no-op read and a raw upstream request", n)
	// One request first, so the raw requests reuse a kept-alive connection as the plugin does.
	if _, err := e.rawToken("rtt-seller-warmup"); err != nil {
		return err
	}
	var first, noop, rtt, sign []time.Duration
	for i := range n {
		acct := sellerAccount(i)
		time.Sleep(quietRaft)
		d, err := e.timedRead("navercommerce/token/"+sellersRole+"/"+acct, leased)
		if err != nil {
			return err
		}
		first = append(first, d)
		time.Sleep(quietRaft)
		if d, err = e.timedRead("noop/token/"+sellersRole+"/"+acct, leased); err != nil {
			return err
		}
		noop = append(noop, d)
		rt, err := e.rawToken(fmt.Sprintf("rtt-seller-%05d", i))
		if err != nil {
			return err
		}
		sign, rtt = append(sign, rt.sign), append(rtt, rt.rtt)
	}
	res.first, res.firstNoop = summarise(first, 0, 0), summarise(noop, 0, 0)
	res.firstRTT, res.firstSign = summarise(rtt, 0, 0), summarise(sign, 0, 0)
	logf("  first read p50 %s; no-op read p50 %s; raw upstream p50 %s", ms(res.first.P50), ms(res.firstNoop.P50), ms(res.firstRTT.P50))
	return nil
}

// timedRead reads path once and checks the answer.
func (e *env) timedRead(path string, check func(*api.Secret) error) (time.Duration, error) {
	t0 := time.Now()
	s, err := e.c.Logical().ReadWithContext(e.ctx, path)
	d := time.Since(t0)
	if err == nil {
		err = check(s)
	}
	if err != nil {
		return d, fmt.Errorf("read %s: %w", path, err)
	}
	return d, nil
}

// sellersWarmup reads every seller from `from` on once through the lease-free role (no
// leases in storage, so the state file's growth is the plugin's). A read the plugin's
// application budget refuses is a finding: it is counted, the budget raised as an operator
// would, and the read made again.
func (e *env) sellersWarmup(res *sellersResult, from int, dataDir string) error {
	n := e.o.sellers - from
	logf("sellers: warming up %d sellers (%d concurrent lease-free reads)", n, res.warmupWorkers)
	fsm := filepath.Join(dataDir, "vault.db")
	size0, sizeErr := fileSize(fsm)
	st0, err := e.em.Stats()
	if err != nil {
		return err
	}
	m0, err := e.raftMetrics()
	if err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		refused []int
	)
	read := func(i int) error {
		_, err := e.timedRead("navercommerce/token/"+sellersFreeRole+"/"+sellerAccount(from+i), leaseFree)
		if err != nil && strings.Contains(err.Error(), "max_application_requests_per_hour") {
			mu.Lock()
			refused = append(refused, i)
			if res.refusedExample == "" {
				res.refusedExample = err.Error()
			}
			mu.Unlock()
			return nil
		}
		return err
	}
	t0 := time.Now()
	if err := parallel(n, res.warmupWorkers, read); err != nil {
		return err
	}
	res.refused = len(refused)
	if res.refused > 0 {
		res.raisedBudget = 3 * e.o.sellers
		logf("  the plugin's application budget refused %d reads; setting max_application_requests_per_hour=%d and reading them again", res.refused, res.raisedBudget)
		if _, err := e.c.Logical().WriteWithContext(e.ctx, "navercommerce/config", map[string]any{"max_application_requests_per_hour": res.raisedBudget}); err != nil {
			return err
		}
		again := slices.Clone(refused)
		refused = nil
		if err := parallel(len(again), res.warmupWorkers, func(j int) error { return read(again[j]) }); err != nil {
			return err
		}
		if len(refused) > 0 {
			return fmt.Errorf("%d reads refused again after raising the budget: %s", len(refused), res.refusedExample)
		}
	}
	res.warmup = time.Since(t0)
	st1, err := e.em.Stats()
	if err != nil {
		return err
	}
	res.warmupRequests = st1.TokenRequests - st0.TokenRequests
	m1, err := e.raftMetrics()
	if err != nil {
		return err
	}
	res.warmupRaft = raftCounters{applies: m1.applies - m0.applies, logBytes: m1.logBytes - m0.logBytes}
	if size1, err := fileSize(fsm); err == nil && sizeErr == nil {
		res.fsmGrowth, res.fsmSize = size1-size0, size1
	}
	logf("  %d sellers in %s; %d token requests", n, res.warmup.Round(time.Millisecond), res.warmupRequests)
	return nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// pluginStorage counts the entries under each folder of the plugin's mount and the mean
// size of up to storageSample of them, through sys/raw (the decrypted values).
func (e *env) pluginStorage() ([]storagePrefix, error) {
	mounts, err := e.c.Sys().ListMountsWithContext(e.ctx)
	if err != nil {
		return nil, err
	}
	m, ok := mounts["navercommerce/"]
	if !ok || m.UUID == "" {
		return nil, errors.New("no navercommerce/ mount with a UUID in sys/mounts")
	}
	root := "sys/raw/logical/" + m.UUID + "/"
	top, err := e.rawList(root)
	if err != nil {
		return nil, err
	}
	var out []storagePrefix
	for _, k := range top {
		if !strings.HasSuffix(k, "/") {
			sp := storagePrefix{prefix: k, entries: 1}
			if err := e.sampleSize(&sp, root+k); err != nil {
				return nil, err
			}
			out = append(out, sp)
			continue
		}
		keys, err := e.rawList(root + k)
		if err != nil {
			return nil, err
		}
		sp := storagePrefix{prefix: k, entries: len(keys)}
		rng := rand.New(rand.NewPCG(1, 2))
		for _, i := range rng.Perm(len(keys))[:min(storageSample, len(keys))] {
			if err := e.sampleSize(&sp, root+k+keys[i]); err != nil {
				return nil, err
			}
		}
		out = append(out, sp)
	}
	return out, nil
}

const storageSample = 200

// rollbackMetricName is vault.rollback.attempt.navercommerce- in Prometheus's spelling.
const rollbackMetricName = "vault_rollback_attempt_navercommerce"

func (e *env) rawList(path string) ([]string, error) {
	s, err := e.c.Logical().ListWithContext(e.ctx, path)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", path, err)
	}
	if s == nil {
		return nil, nil
	}
	var out []string
	for _, k := range s.Data["keys"].([]any) {
		out = append(out, fmt.Sprint(k))
	}
	return out, nil
}

// sampleSize adds the size of the raw entry at path to sp's running mean.
func (e *env) sampleSize(sp *storagePrefix, path string) error {
	s, err := e.c.Logical().ReadWithContext(e.ctx, path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if s == nil {
		return nil // gone meanwhile
	}
	v, _ := s.Data["value"].(string)
	sp.bytes = (sp.bytes*float64(sp.sampled) + float64(len(v))) / float64(sp.sampled+1)
	sp.sampled++
	return nil
}

// periodicRuns waits until Vault has run the plugin's periodic function runs more times
// (within timeout) and returns each run's duration, from Vault's rollback metric for the mount
// (vault.rollback.attempt.navercommerce-, with add_mount_point_rollback_metrics): Vault calls
// the periodic function in its rollback, once a minute.
func (e *env) periodicRuns(runs int, timeout time.Duration) ([]time.Duration, error) {
	count0, sum0, err := e.rollbackMetric()
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	deadline := time.Now().Add(timeout)
	for len(out) < runs && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		count, sum, err := e.rollbackMetric()
		if err != nil {
			return nil, err
		}
		if count > count0 {
			// Several runs between two polls share the mean.
			each := (sum - sum0) / (count - count0)
			for range int(count - count0) {
				out = append(out, time.Duration(each*float64(time.Millisecond)))
			}
			count0, sum0 = count, sum
		}
	}
	if len(out) < runs {
		return out, fmt.Errorf("the plugin's periodic function ran %d times in %s under Vault, want %d (counted by %s_count)", len(out), timeout, runs, rollbackMetricName)
	}
	return out, nil
}

// rollbackMetric reads the count and the sum (milliseconds) of the mount's rollback metric.
func (e *env) rollbackMetric() (count, sum float64, err error) {
	resp, err := e.c.Logical().ReadRawWithDataWithContext(e.ctx, "sys/metrics", map[string][]string{"format": {"prometheus"}})
	if err != nil {
		return 0, 0, fmt.Errorf("reading sys/metrics: %w", err)
	}
	defer resp.Body.Close()
	values, err := promSummary(resp.Body, rollbackMetricName)
	if err != nil {
		return 0, 0, err
	}
	return values.count, values.sum, nil
}

// sellersRestart reloads the plugin (a new process; every token is in storage only), reads
// every seller once and then waits, counting Naver requests: a cold start must not send any
// beyond the renewals that are due.
func (e *env) sellersRestart(res *sellersResult) error {
	rr := &res.restart
	logf("sellers: reloading the plugin with %d tokens stored", e.o.sellers)
	st0, err := e.em.Stats()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := e.c.Sys().ReloadPluginWithContext(e.ctx, &api.ReloadPluginInput{Plugin: pluginName}); err != nil {
		return fmt.Errorf("reloading the plugin: %w", err)
	}
	rr.reload = time.Since(t0)
	rng := rand.New(rand.NewPCG(3, 4))
	if rr.firstReadLat, err = e.timedRead("navercommerce/token/"+sellersFreeRole+"/"+sellerAccount(rng.IntN(e.o.sellers)), leaseFree); err != nil {
		return err
	}
	rr.firstRead = time.Since(t0)
	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	if err := parallel(e.o.sellers, res.warmupWorkers, func(i int) error {
		d, err := e.timedRead("navercommerce/token/"+sellersFreeRole+"/"+sellerAccount(i), leaseFree)
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		return err
	}); err != nil {
		return err
	}
	rr.allRead = time.Since(t0)
	rr.reads = summarise(lat, 0, 0)
	st1, err := e.em.Stats()
	if err != nil {
		return err
	}
	rr.readRequests = st1.TokenRequests - st0.TokenRequests
	if pid, err := childPID(e.v.Proc.Pid(), pluginName, ""); err == nil {
		e.pluginPID = pid
		rr.rss, _ = statusKiB(pid, "VmRSS")
	}
	logf("  first read %s after the reload; all %d read in %s (p50 %s, max %s), %d token requests; watching for %s",
		rr.firstRead.Round(time.Millisecond), e.o.sellers, rr.allRead.Round(time.Millisecond), ms(rr.reads.P50), ms(rr.reads.Max), rr.readRequests, e.o.restartWatch)
	w0 := time.Now()
	for time.Since(w0) < e.o.restartWatch {
		got, err := e.periodicRuns(1, e.o.restartWatch-time.Since(w0))
		rr.periodic = append(rr.periodic, got...)
		if err != nil {
			break // no run in what was left of the watch
		}
	}
	rr.watch = time.Since(w0)
	st2, err := e.em.Stats()
	if err != nil {
		return err
	}
	rr.watchRequests = st2.TokenRequests - st1.TokenRequests
	logf("  %d token requests in the %s after; %d periodic runs", rr.watchRequests, rr.watch.Round(time.Second), len(rr.periodic))
	return nil
}
