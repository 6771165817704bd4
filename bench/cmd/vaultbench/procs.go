package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// proc is a child process in its own process group (so that stopping it also stops what it
// started: Vault's plugin processes), logging to a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

var (
	procsMu sync.Mutex
	procs   []*proc
	// pidFile lists the process groups started, for scripts/bench.sh to clean up after a crash.
	pidFile string
)

func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = env
	// Pdeathsig: if the bench dies, its children are told to stop too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	procsMu.Lock()
	defer procsMu.Unlock()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	procs = append(procs, p)
	if pidFile != "" {
		if pf, err := os.OpenFile(pidFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			fmt.Fprintln(pf, cmd.Process.Pid)
			pf.Close()
		}
	}
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to 15s, then kills the process group.
func (p *proc) stop() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			logf("%s did not stop within 15s of SIGTERM; killing it", p.name)
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Whatever is left in the group (an orphaned plugin process) goes too. A group id is not
	// reused while the group has members, so this reaches only processes we started.
	if syscall.Kill(-p.cmd.Process.Pid, 0) == nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (p *proc) tail(n int) string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var stopOnce sync.Once

// stopAll stops every child, newest first (Vault before the emulator).
func stopAll() {
	stopOnce.Do(func() {
		procsMu.Lock()
		ps := append([]*proc(nil), procs...)
		procsMu.Unlock()
		for i := len(ps) - 1; i >= 0; i-- {
			ps[i].stop()
		}
	})
}

// childEnv is our environment without VAULT_* settings, plus extra.
func childEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// freePortPair returns a free loopback port whose successor is free too (a dev Vault's
// cluster listener takes port+1).
func freePortPair() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free pair of loopback ports")
}

func waitFor(timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
		}
		time.Sleep(interval)
	}
}

// newClientSecret returns a random cost-4 bcrypt salt whose last character has its unused
// bits clear, as Naver issues them.
func newClientSecret() string {
	const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 22)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	b[21] = ".Oeu"[int(b[21])%4]
	return "$2a$04$" + string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------------------
// The emulator.

type emulator struct {
	clientID, clientSecret string
	url                    string // base URL (…/external)
	root                   string // where /_emulator/ lives
	proc                   *proc
	http                   *http.Client
}

func startEmulator(bin, dir string) (*emulator, error) {
	em := &emulator{clientID: "benchClient" + randomHex(6), clientSecret: newClientSecret()}
	urlFile := filepath.Join(dir, "emulator.url")
	p, err := startProc("emulator", filepath.Join(dir, "emulator.log"), childEnv(), bin,
		"-listen", "127.0.0.1:0", "-client-id", em.clientID, "-client-secret", em.clientSecret, "-url-file", urlFile)
	if err != nil {
		return nil, err
	}
	em.proc = p
	err = waitFor(15*time.Second, 20*time.Millisecond, "the emulator's URL file", func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("the emulator exited: %v\n%s", p.err, p.tail(20))
		}
		data, err := os.ReadFile(urlFile)
		if err != nil {
			return false, err
		}
		em.url = strings.TrimSpace(string(data))
		return strings.HasPrefix(em.url, "http://127.0.0.1:") && strings.Count(em.url, "/") >= 3, nil
	})
	if err != nil {
		return nil, err
	}
	i := strings.Index(em.url[len("http://"):], "/")
	em.root = em.url[:len("http://")+i]
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 8
	em.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return em, nil
}

func (em *emulator) admin(method, path, body string, out *[]byte) error {
	req, err := http.NewRequest(method, em.root+"/_emulator/"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := em.http.Do(req)
	if err != nil {
		return fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("emulator %s %s: HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		*out = data
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Vault.

type plugin struct {
	name, bin, version, sha string
}

type vault struct {
	bin, dir, addr, token string
	proc                  *proc
	api                   *api.Client
}

// startDevVault starts `vault server -dev` on a free loopback port with both plugins copied
// into its plugin directory (not registered yet).
func startDevVault(bin, dir string, plugins []*plugin) (*vault, error) {
	v := &vault{bin: bin, dir: dir, token: "root-" + randomHex(8)}
	pluginDir := filepath.Join(dir, "plugins")
	home := filepath.Join(dir, "home")
	for _, d := range []string{pluginDir, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	for _, p := range plugins {
		data, err := os.ReadFile(p.bin)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(pluginDir, p.name), data, 0o755); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		p.sha = hex.EncodeToString(sum[:])
	}
	port, err := freePortPair()
	if err != nil {
		return nil, err
	}
	v.addr = fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "server.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("plugin_directory = %q\n", pluginDir)), 0o600); err != nil {
		return nil, err
	}
	// Log level warn: the bench measures requests, not logging.
	v.proc, err = startProc("vault server", filepath.Join(dir, "vault.log"), childEnv("HOME="+home), bin,
		"server", "-config="+cfg, "-log-level=warn", "-dev", "-dev-root-token-id="+v.token,
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	v.api, err = newClient(v.addr, v.token)
	if err != nil {
		return nil, err
	}
	err = waitFor(60*time.Second, 50*time.Millisecond, "Vault to become active", func() (bool, error) {
		if v.proc.exited() {
			return false, fmt.Errorf("vault server exited: %v\n%s", v.proc.err, v.proc.tail(30))
		}
		h, err := v.api.Sys().Health()
		if err != nil {
			return false, err
		}
		return h.Initialized && !h.Sealed && !h.Standby, nil
	})
	return v, err
}

// newClient is the one vault/api client every measurement uses: HTTP/1.1 keep-alive with
// enough idle connections for concurrency 64, no retries, no rate limiter.
func newClient(addr, token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	tr := cfg.HttpClient.Transport.(*http.Transport)
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	tr.MaxConnsPerHost = 0
	tr.DisableKeepAlives = false
	tr.ForceAttemptHTTP2 = false
	tr.Proxy = nil
	cfg.Address = addr
	cfg.Timeout = 60 * time.Second
	cfg.MaxRetries = 0
	cfg.Limiter = nil
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return c, nil
}

// version runs `vault version`.
func vaultVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = childEnv()
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(out.String())
}

// ---------------------------------------------------------------------------------------
// /proc.

// childPID returns the pid of a child of parent whose command line contains match (and not
// exclude).
func childPID(parent int, match, exclude string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := parentPID(pid); ppid != parent {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		s := string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		if strings.Contains(s, match) && (exclude == "" || !strings.Contains(s, exclude)) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child of pid %d runs %s", parent, match)
}

func parentPID(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces: fields start after ")".
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, errors.New("bad stat")
	}
	return strconv.Atoi(f[1])
}

// cpuTicks is a process's user+system time in clock ticks.
func cpuTicks(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// systemTicks returns the busy and total clock ticks of all CPUs from /proc/stat.
func systemTicks() (busy, total int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already in user time
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// statusKiB reads a "VmRSS:"-style field of /proc/PID/status, in KiB.
func statusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
