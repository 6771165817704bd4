package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
)

// The Raft phase: the same reads on a single-node Vault with integrated storage (Raft) on
// disk, where a lease is a storage write, beside reads that return the same data without a
// lease, plus what each read costs in Raft writes and leases.

// raftTargets are the Raft phase's targets, leased and lease-free side by side.
func raftTargets() []target {
	return []target{
		{name: "token", path: "navercommerce/token/" + warmRole, check: leased},
		{name: "no-op", path: "noop/token/" + warmRole, check: leased},
		{name: "token lease-free", path: "navercommerce/token/" + warmFreeRole, check: leaseFree},
		{name: "no-op lease-free", path: "noop/leasefree/" + warmRole, check: leaseFree},
		{name: "kv-v2", path: "kv/data/bench", check: kvData},
	}
}

// leaseFree checks a token answer without a lease: data, no lease id, no lease duration.
func leaseFree(s *api.Secret) error {
	if s == nil || s.Data == nil {
		return fmt.Errorf("empty response")
	}
	if s.LeaseID != "" || s.LeaseDuration != 0 {
		return fmt.Errorf("want no lease, got lease %q for %ds", s.LeaseID, s.LeaseDuration)
	}
	if tok, _ := s.Data["access_token"].(string); tok == "" {
		return fmt.Errorf("no access_token")
	}
	if _, ok := s.Data["expires_in"]; !ok {
		return fmt.Errorf("no expires_in")
	}
	return nil
}

// raftResult is the Raft phase's part of the report.
type raftResult struct {
	warm       warmResult
	storage    []storageCost // per target, in raftTargets order
	dataDir    string
	fileSystem string   // what dataDir is on
	violations []string // of Naver's rules, seen by the phase's emulator
	// setup is what the Raft server cost to start: init, unseal, leader election.
	setup time.Duration
	// sellers is the many-seller phase on the same server; nil when -sellers=0.
	sellers *sellersResult
}

// storageCost is what storageReads sequential reads of one target left in Vault's storage.
type storageCost struct {
	target   string
	reads    int
	p50      time.Duration
	applies  float64 // Raft log entries applied (storage writes) during the series
	logBytes float64 // bytes of Raft log entries written during the series
	leases   int     // leases under the target's path created during the series
	// diskBytes is what the Vault process wrote to disk during the series (write_bytes of
	// /proc/PID/io: whole pages, fsynced Raft log and state), -1 if unknown.
	diskBytes int64
}

// per1000 scales a series' count to 1000 reads.
func (s storageCost) per1000(n float64) float64 { return n * 1000 / float64(s.reads) }

// raftStanzas configure integrated storage and a Prometheus sink: its counters are
// cumulative, so the difference of two readings is what happened in between (the default
// in-memory sink's counters restart every 10 s).
func raftStanzas(dataDir string) string {
	// raw_storage_endpoint lets the sellers phase count the plugin's entries (sys/raw);
	// add_mount_point_rollback_metrics times the plugin's periodic function per mount.
	return harness.RaftStorage(dataDir, "bench") + `
raw_storage_endpoint = true
telemetry {
  prometheus_retention_time        = "1h"
  disable_hostname                 = true
  add_mount_point_rollback_metrics = true
}`
}

// raftPhase starts a fresh emulator and a single-node Raft Vault (init, unseal, both
// plugins registered and mounted, kv-v2), measures warm reads interleaved as the dev phase
// does, then the storage cost of each target, and stops them.
func raftPhase(o options, g *harness.Group) (*raftResult, error) {
	res := &raftResult{}
	logf("Raft phase: starting an emulator and a single-node Vault with integrated storage")
	t0 := time.Now()
	// The emulator's per-application hourly limit, raised for an application of o.sellers
	// sellers (the default 60 is for one shop): over it the emulator penalises as Naver would.
	emArgs := []string{fmt.Sprintf("-penalty-requests-per-hour=%d", o.naverAppPerHour())}
	e, err := startEnv(o, g, "raft", emArgs, func(opts harness.VaultOptions) (*harness.Vault, error) {
		res.dataDir = filepath.Join(opts.Dir, "data")
		if err := os.MkdirAll(res.dataDir, 0o700); err != nil {
			return nil, err
		}
		return harness.StartInitialisedVault(g, opts, raftStanzas(res.dataDir))
	})
	if err != nil {
		return nil, err
	}
	defer e.stop()
	res.setup = time.Since(t0)
	res.fileSystem = fileSystem(res.dataDir)
	if res.warm, err = e.measureWarm(raftTargets(), o.raftConcurrency, o.raftRounds, o.raftRoundDur); err != nil {
		return nil, fmt.Errorf("warm reads: %w", err)
	}
	for _, t := range raftTargets() {
		sc, err := e.storageCost(t, o.storageReads)
		if err != nil {
			return nil, fmt.Errorf("storage cost of %s: %w", t.name, err)
		}
		res.storage = append(res.storage, sc)
	}
	st, err := e.em.Stats()
	if err != nil {
		return nil, err
	}
	res.violations = st.Violations
	if o.sellers > 0 {
		if res.sellers, err = e.sellers(res.dataDir); err != nil {
			return nil, fmt.Errorf("sellers: %w", err)
		}
		res.violations = res.sellers.violations // the same emulator's, counted since it started
	}
	return res, nil
}

// storageCost reads t n times, one at a time, and counts the Raft writes, Raft log bytes
// and leases the series left. Counted from Vault's own metrics and lease index, so
// anything else Vault wrote meanwhile counts too; the kv-v2 series, which cannot write,
// shows how much that is.
func (e *env) storageCost(t target, n int) (storageCost, error) {
	sc := storageCost{target: t.name, reads: n}
	m0, err := e.raftMetrics()
	if err != nil {
		return sc, err
	}
	l0, err := e.leaseCount(t.path)
	if err != nil {
		return sc, err
	}
	d0, diskErr := ioWriteBytes(e.v.Proc.Pid())
	lat := make([]time.Duration, 0, n)
	for range n {
		t1 := time.Now()
		s, err := e.c.Logical().ReadWithContext(e.ctx, t.path)
		d := time.Since(t1)
		if err == nil {
			err = t.check(s)
		}
		if err != nil {
			return sc, fmt.Errorf("read %s: %w", t.path, err)
		}
		lat = append(lat, d)
	}
	d1, err := ioWriteBytes(e.v.Proc.Pid())
	if diskErr == nil && err == nil {
		sc.diskBytes = d1 - d0
	} else {
		sc.diskBytes = -1
	}
	m1, err := e.raftMetrics()
	if err != nil {
		return sc, err
	}
	l1, err := e.leaseCount(t.path)
	if err != nil {
		return sc, err
	}
	sc.p50 = summarise(lat, 0, 0).P50
	sc.applies = m1.applies - m0.applies
	sc.logBytes = m1.logBytes - m0.logBytes
	sc.leases = l1 - l0
	logf("  %s: %d reads, p50 %s; per 1000 reads: %.0f Raft writes, %.0f KiB of Raft log, %.0f KiB written to disk, %.0f leases",
		t.name, n, ms(sc.p50), sc.per1000(sc.applies), sc.per1000(sc.logBytes)/1024, sc.per1000(float64(sc.diskBytes))/1024, sc.per1000(float64(sc.leases)))
	return sc, nil
}

// raftCounters are cumulative Raft counters of Vault's Prometheus metrics.
type raftCounters struct {
	applies  float64 // vault_raft_apply: log entries applied (every storage write is one)
	logBytes float64 // vault_raft_boltdb_logSize_sum: bytes of log entries stored
}

func (e *env) raftMetrics() (raftCounters, error) {
	resp, err := e.c.Logical().ReadRawWithDataWithContext(e.ctx, "sys/metrics", map[string][]string{"format": {"prometheus"}})
	if err != nil {
		return raftCounters{}, fmt.Errorf("reading sys/metrics: %w", err)
	}
	defer resp.Body.Close()
	values, err := promValues(resp.Body, "vault_raft_apply", "vault_raft_boltdb_logSize_sum")
	if err != nil {
		return raftCounters{}, err
	}
	return raftCounters{applies: values["vault_raft_apply"], logBytes: values["vault_raft_boltdb_logSize_sum"]}, nil
}

// summaryValues are the count and sum of a Prometheus summary.
type summaryValues struct{ count, sum float64 }

// promSummary reads the count and sum of the summary name in Prometheus text format, however
// many underscores join the name and the suffix (go-metrics turns a trailing "-" into one);
// zero when Vault has not measured it yet.
func promSummary(r io.Reader, name string) (summaryValues, error) {
	var out summaryValues
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.ContainsRune(f[0], '{') {
			continue
		}
		var dst *float64
		switch {
		case strings.HasSuffix(f[0], "_count") && strings.TrimRight(strings.TrimSuffix(f[0], "_count"), "_") == name:
			dst = &out.count
		case strings.HasSuffix(f[0], "_sum") && strings.TrimRight(strings.TrimSuffix(f[0], "_sum"), "_") == name:
			dst = &out.sum
		default:
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return out, fmt.Errorf("metric %s: %w", f[0], err)
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading metrics: %w", err)
	}
	return out, nil
}

// promValues reads the unlabelled samples named in Prometheus text format; each must be there.
func promValues(r io.Reader, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !want[f[0]] {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", f[0], err)
		}
		out[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s in Vault's metrics", n)
		}
	}
	return out, nil
}

// leaseCount is the number of leases Vault holds for reads of path (LIST
// sys/leases/lookup/<path>/).
func (e *env) leaseCount(path string) (int, error) {
	s, err := e.c.Logical().ListWithContext(e.ctx, "sys/leases/lookup/"+path+"/")
	if err != nil {
		return 0, fmt.Errorf("listing the leases of %s: %w", path, err)
	}
	if s == nil {
		return 0, nil // none
	}
	keys, _ := s.Data["keys"].([]any)
	return len(keys), nil
}
