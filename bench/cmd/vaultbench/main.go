// Command vaultbench is the orchestrator and load generator behind `make bench`
// (scripts/bench.sh builds and runs it). It starts the Naver emulator and a dev Vault on free
// loopback ports, registers the navercommerce plugin and a do-nothing plugin
// (bench/noop-plugin) by SHA-256 and version, and measures:
//
//   - warm token reads against the no-op plugin's leased reads and kv-v2 reads, interleaved in
//     short rounds with one vault/api client, at concurrency 1, 8 and 64;
//   - cold reads (a new key each, so signing plus one request to the emulator), beside the raw
//     upstream round trip to the emulator, timed from here;
//   - 10,000 roles over 10,000 accounts: creating them, LIST, a warm read, the plugin's RSS;
//   - reads while a token is renewed and Naver is slow, with background refresh on and off;
//   - on a Raft server: the same warm reads leased and lease-free, what they leave in storage,
//     and 10,000 sellers of one application read through many-seller roles (sellers.go).
//
// It prints one table to stdout and writes the report (docs/benchmarks.md), folding in the Go
// micro-benchmark output that scripts/bench.sh collected (-gobench). Every child process runs
// in its own process group and is stopped on exit, on SIGINT/SIGTERM, and (Pdeathsig) if this
// process dies.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
)

const (
	pluginName   = "vault-plugin-secrets-navercommerce"
	noopName     = "vault-plugin-secrets-benchnoop"
	noopVer      = "v0.0.1"
	warmRole     = "warm"               // a role with a lease (the default)
	warmFreeRole = "warm-free"          // the same account, lease=false
	warmAcct     = "bench-warm-account" // the no-op plugin returns this account_id: same size
)

type options struct {
	vaultBin, pluginBin, pluginVersion, noopBin, emulatorBin string
	workDir, out, goBench, goVersion                         string
	concurrency                                              []int
	rounds                                                   int
	roundDur, warmupDur                                      time.Duration
	maxPerRound                                              int64
	coldN, scaleRoles, scaleWarm, scaleWorkers               int
	naverDelay                                               time.Duration
	skipRefresh                                              bool
	raft                                                     bool
	raftConcurrency                                          []int
	raftRounds                                               int
	raftRoundDur                                             time.Duration
	storageReads                                             int
	sellers, sellersFirst, sellersRounds                     int
	sellersConcurrency                                       []int
	restartWatch                                             time.Duration
	emulatorAppPerHour                                       int       // 0: derived from sellers
	sellersWeek                                              string    // the simulated week's section, if any
	t0                                                       time.Time // when scripts/bench.sh started
}

func main() {
	o := options{}
	var conc string
	flag.StringVar(&o.vaultBin, "vault", os.Getenv("VAULT_BIN"), "vault binary")
	flag.StringVar(&o.pluginBin, "plugin", "bin/"+pluginName, "navercommerce plugin binary")
	flag.StringVar(&o.pluginVersion, "plugin-version", os.Getenv("PLUGIN_VERSION"), "version the plugin reports")
	flag.StringVar(&o.noopBin, "noop", "", "no-op plugin binary (bench/noop-plugin)")
	flag.StringVar(&o.emulatorBin, "emulator", "bin/navercommerce-emulator", "emulator binary")
	flag.StringVar(&o.workDir, "work", "", "directory for Vault's and the emulator's files and logs")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "report to write (empty: none)")
	flag.StringVar(&o.goBench, "gobench", "", "raw `go test -bench` output to fold into the report")
	flag.StringVar(&o.goVersion, "go-version", runtime.Version(), "Go version to report")
	flag.StringVar(&conc, "concurrency", "1,8,64", "concurrency levels")
	flag.IntVar(&o.rounds, "rounds", 7, "measured rounds per target and concurrency (interleaved)")
	flag.DurationVar(&o.roundDur, "round", 1200*time.Millisecond, "length of one round")
	flag.DurationVar(&o.warmupDur, "warmup", 500*time.Millisecond, "unmeasured round per target before each concurrency")
	flag.Int64Var(&o.maxPerRound, "max-per-round", 100000, "cap on reads in one round")
	flag.IntVar(&o.coldN, "cold", 200, "cold reads (and raw upstream requests)")
	flag.IntVar(&o.scaleRoles, "roles", 10000, "roles (over as many accounts) for the scale test")
	flag.IntVar(&o.scaleWarm, "scale-warm", 100, "roles whose tokens are read before measuring RSS")
	flag.IntVar(&o.scaleWorkers, "scale-workers", 16, "concurrent role writes")
	flag.DurationVar(&o.naverDelay, "naver-delay", 2*time.Second, "how slow Naver is during the refresh test")
	flag.BoolVar(&o.skipRefresh, "skip-refresh", false, "skip the refresh test (about 35s)")
	flag.BoolVar(&o.raft, "raft", true, "run the Raft phase (a single-node Vault with integrated storage; about 90 s, and about 6 minutes more for -sellers)")
	raftConc := flag.String("raft-concurrency", "1,8", "concurrency levels of the Raft phase")
	flag.IntVar(&o.raftRounds, "raft-rounds", 6, "measured rounds per target and concurrency in the Raft phase")
	flag.DurationVar(&o.raftRoundDur, "raft-round", time.Second, "length of one round in the Raft phase")
	flag.IntVar(&o.storageReads, "storage-reads", 1000, "sequential reads per target for counting Raft writes and leases")
	flag.IntVar(&o.sellers, "sellers", 10000, "sellers of one application in the Raft phase's many-seller test (0: skip it)")
	flag.IntVar(&o.sellersFirst, "sellers-first", 200, "new sellers' first reads measured one at a time (the rest are warmed up concurrently)")
	sellersConc := flag.String("sellers-concurrency", "1,64", "concurrency levels of the warm reads spread over the sellers")
	flag.IntVar(&o.sellersRounds, "sellers-rounds", 5, "measured rounds per target and concurrency of the warm reads spread over the sellers")
	flag.DurationVar(&o.restartWatch, "restart-watch", 2*time.Minute, "how long to count Naver requests after the plugin's reload")
	flag.IntVar(&o.emulatorAppPerHour, "emulator-app-per-hour", 0, "the Raft phase emulator's token requests per application per hour before its penalty (0: 2 x sellers + 1000)")
	flag.StringVar(&o.sellersWeek, "sellers-week", "", "markdown of the simulated week at 10,000 sellers (internal/sim TestSellersWeek) to include")
	t0 := flag.Int64("t0", 0, "Unix time scripts/bench.sh started (for the report)")
	flag.Parse()
	if *t0 > 0 {
		o.t0 = time.Unix(*t0, 0)
	}
	var err error
	if o.concurrency, err = parseConcurrency(conc); err != nil {
		fatalf("-concurrency: %v", err)
	}
	if o.raftConcurrency, err = parseConcurrency(*raftConc); err != nil {
		fatalf("-raft-concurrency: %v", err)
	}
	if o.sellersConcurrency, err = parseConcurrency(*sellersConc); err != nil {
		fatalf("-sellers-concurrency: %v", err)
	}
	if o.sellers < 0 || o.sellersFirst < 1 || o.sellersRounds < 1 || o.emulatorAppPerHour < 0 {
		fatalf("-sellers and -emulator-app-per-hour must not be negative, -sellers-first and -sellers-rounds at least 1")
	}
	if o.storageReads < 1 || o.raftRounds < 1 {
		fatalf("-storage-reads and -raft-rounds must be at least 1")
	}
	if o.vaultBin == "" || o.pluginVersion == "" || o.noopBin == "" || o.workDir == "" {
		fatalf("need -vault, -plugin-version, -noop and -work")
	}
	// A user's VAULT_ADDR, VAULT_TOKEN or VAULT_RATE_LIMIT must not reach our client.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "VAULT_") {
			os.Unsetenv(k)
		}
	}
	// The pid file lists the process groups started, for scripts/bench.sh to clean up after
	// a crash of this process.
	group := &harness.Group{PIDFile: filepath.Join(o.workDir, "pids")}
	stopAll := sync.OnceFunc(func() {
		if err := group.StopAll(15 * time.Second); err != nil {
			logf("%v", err)
		}
	})

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		logf("%v: stopping Vault and the emulator", s)
		stopAll()
		os.Exit(130)
	}()

	err = run(o, group)
	stopAll()
	if err != nil {
		fatalf("%v", err)
	}
}

// naverAppPerHour is the Raft phase emulator's hourly limit per application: room for every
// seller's first token and the bench's raw requests, twice.
func (o options) naverAppPerHour() int {
	if o.emulatorAppPerHour > 0 {
		return o.emulatorAppPerHour
	}
	return 2*o.sellers + 1000
}

// parseConcurrency reads a comma-separated list of concurrency levels (1 to 256).
func parseConcurrency(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 256 {
			return nil, fmt.Errorf("bad concurrency %q in %q", f, list)
		}
		out = append(out, n)
	}
	return out, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vaultbench: "+format+"\n", args...)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vaultbench: "+format+"\n", args...)
	os.Exit(1)
}

// env is everything running in one phase: the emulator, a Vault server and its plugins.
type env struct {
	o                  options
	em                 *harness.Emulator
	v                  *harness.Vault
	c                  *api.Client
	ours               *harness.Plugin
	noop               *harness.Plugin
	ctx                context.Context
	pluginPID, noopPID int
}

func run(o options, g *harness.Group) error {
	r := &report{start: time.Now(), o: o}
	var err error
	r.machine.cores = runtime.NumCPU()
	r.machine.cpu = cpuModel()
	r.machine.goVersion = o.goVersion
	if r.machine.vaultVersion, err = harness.Version(o.vaultBin); err != nil {
		r.machine.vaultVersion = "unknown (" + err.Error() + ")"
	}
	r.machine.kernel = kernel()
	r.loadStart = loadAvg()
	if o.goBench != "" {
		data, err := os.ReadFile(o.goBench)
		if err != nil {
			return err
		}
		r.goBenchRaw = string(data)
		r.goBench = parseGoBench(r.goBenchRaw)
	}
	if o.sellersWeek != "" {
		data, err := os.ReadFile(o.sellersWeek)
		if err != nil {
			return err
		}
		r.sellersWeek = string(data)
	}

	logf("starting the emulator and a dev Vault")
	// No hourly request budget at the dev phase's emulator: the cold and scale measurements
	// ask for hundreds of new keys on purpose. Violations of Naver's rules are still recorded.
	e, err := startEnv(o, g, "dev", []string{"-penalty-requests-per-hour=-1"}, func(opts harness.VaultOptions) (*harness.Vault, error) {
		return harness.StartDevVault(g, opts)
	})
	if err != nil {
		return err
	}

	if err := e.warm(r); err != nil {
		return fmt.Errorf("warm reads: %w", err)
	}
	if err := e.cold(r); err != nil {
		return fmt.Errorf("cold reads: %w", err)
	}
	if err := e.scale(r); err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	if !o.skipRefresh {
		for _, bg := range []bool{true, false} {
			rr, err := e.refresh(bg)
			if err != nil {
				return fmt.Errorf("refresh test (background_refresh=%v): %w", bg, err)
			}
			r.refresh = append(r.refresh, rr)
		}
	}
	// The same process some time later: the Go runtime returns freed memory gradually.
	if rss, err := statusKiB(e.pluginPID, "VmRSS"); err == nil {
		r.scale.rssLater, r.scale.laterAfter = rss, time.Since(r.scale.measuredAt)
	}
	if st, err := e.em.Stats(); err == nil {
		r.violations = st.Violations
	}
	// The dev server goes before the Raft phase: it holds every lease the warm reads made.
	e.stop()
	if o.raft {
		if r.raft, err = raftPhase(o, g); err != nil {
			return fmt.Errorf("the Raft phase: %w", err)
		}
		for _, v := range r.raft.violations {
			r.violations = append(r.violations, "Raft phase: "+v)
		}
	}
	r.loadEnd = loadAvg()
	r.end = time.Now()

	table := r.summaryTable()
	fmt.Println(table)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, []byte(r.markdown()), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// startEnv starts a phase's emulator and Vault server (by start, with both plugins in its
// plugin directory, log level warn) in the work directory's folder phase, sets them up and
// finds the plugin processes. On an error what it started is stopped again.
func startEnv(o options, g *harness.Group, phase string, emulatorArgs []string, start func(harness.VaultOptions) (*harness.Vault, error)) (*env, error) {
	dir := filepath.Join(o.workDir, phase)
	e := &env{o: o, ctx: context.Background(),
		ours: &harness.Plugin{Name: pluginName, Bin: o.pluginBin, Version: o.pluginVersion},
		noop: &harness.Plugin{Name: noopName, Bin: o.noopBin, Version: noopVer},
	}
	var err error
	if e.em, err = harness.StartEmulator(g, harness.EmulatorOptions{
		Bin: o.emulatorBin, Dir: filepath.Join(dir, "emulator"), ClientID: "benchClient" + harness.RandomHex(6),
		ExtraArgs: emulatorArgs,
	}); err != nil {
		return nil, err
	}
	// Log level warn: the bench measures requests, not logging.
	if e.v, err = start(harness.VaultOptions{Bin: o.vaultBin, Dir: filepath.Join(dir, "vault"), Plugins: []*harness.Plugin{e.ours, e.noop}, LogLevel: "warn"}); err != nil {
		e.stop()
		return nil, err
	}
	e.c = e.v.API
	if err = e.setup(); err != nil {
		err = fmt.Errorf("setup: %w (Vault log: %s)", err, e.v.LogPath())
	}
	if err == nil {
		e.pluginPID, err = childPID(e.v.Proc.Pid(), pluginName, "")
	}
	if err == nil {
		e.noopPID, err = childPID(e.v.Proc.Pid(), noopName, "")
	}
	if err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

// stop stops the phase's Vault server and emulator.
func (e *env) stop() {
	for _, p := range []*harness.Proc{vaultProc(e.v), emulatorProc(e.em)} {
		if p != nil {
			if err := p.Stop(15 * time.Second); err != nil {
				logf("%v", err)
			}
		}
	}
}

func vaultProc(v *harness.Vault) *harness.Proc {
	if v == nil {
		return nil
	}
	return v.Proc
}

func emulatorProc(em *harness.Emulator) *harness.Proc {
	if em == nil {
		return nil
	}
	return em.Proc
}

func kernel() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return runtime.GOOS + " " + strings.TrimSpace(string(data))
}

// setup registers and mounts both plugins and kv-v2, configures our engine and reads once.
func (e *env) setup() error {
	ctx := e.ctx
	for path, p := range map[string]*harness.Plugin{"navercommerce": e.ours, "noop": e.noop} {
		if err := e.v.RegisterPlugin(p); err != nil {
			return err
		}
		if err := e.v.EnablePlugin(path, p); err != nil {
			return err
		}
	}
	if err := e.c.Sys().MountWithContext(ctx, "kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return fmt.Errorf("mounting kv/: %w", err)
	}
	// kv-v2 upgrades its storage in the background after mounting: retry the first write.
	kvSecret := map[string]any{"data": map[string]any{
		"access_token": "kvkvKvkvKvkvKvkvKvkvKvkvKvkvKvkvKvkvKvkvKvk",
		"token_type":   "Bearer",
		"expires_at":   time.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339),
		"expires_in":   10800,
		"type":         "SELLER",
		"account_id":   warmAcct,
	}}
	if err := harness.WaitFor(30*time.Second, 100*time.Millisecond, "kv-v2 to accept a write", func() (bool, error) {
		_, err := e.c.Logical().WriteWithContext(ctx, "kv/data/bench", kvSecret)
		return err == nil, err
	}); err != nil {
		return err
	}
	if _, err := e.c.Logical().WriteWithContext(ctx, "navercommerce/config", map[string]any{
		"client_id": e.em.ClientID, "client_secret": e.em.ClientSecret, "base_url": e.em.URL,
	}); err != nil {
		return fmt.Errorf("configuring navercommerce/: %w", err)
	}
	// Two roles over the same account: one token, read with and without a lease.
	for role, lease := range map[string]bool{warmRole: true, warmFreeRole: false} {
		if _, err := e.c.Logical().WriteWithContext(ctx, "navercommerce/roles/"+role, map[string]any{
			"type": "SELLER", "account_id": warmAcct, "lease": lease,
		}); err != nil {
			return fmt.Errorf("writing the role %s: %w", role, err)
		}
	}
	info, err := e.c.Logical().ReadWithContext(ctx, "navercommerce/info")
	if err != nil {
		return err
	}
	if v, _ := info.Data["version"].(string); v != e.ours.Version {
		return fmt.Errorf("navercommerce/info says version %q, want %q", v, e.ours.Version)
	}
	for _, t := range raftTargets() {
		s, err := e.c.Logical().ReadWithContext(ctx, t.path)
		if err == nil {
			err = t.check(s)
		}
		if err != nil {
			return fmt.Errorf("first read of %s: %w", t.path, err)
		}
	}
	return nil
}

func (e *env) targets() []target {
	return []target{
		{name: "token", path: "navercommerce/token/" + warmRole, check: leased},
		{name: "no-op", path: "noop/token/" + warmRole, check: leased},
		{name: "kv-v2", path: "kv/data/bench", check: kvData},
	}
}

// ourPIDs are the processes of the bench (for telling our CPU use from other load).
func (e *env) ourPIDs() []int {
	return []int{os.Getpid(), e.v.Proc.Pid(), e.pluginPID, e.noopPID, e.em.Proc.Pid()}
}

func (e *env) ourTicks() int64 {
	var n int64
	for _, pid := range e.ourPIDs() {
		n += cpuTicks(pid)
	}
	return n
}
