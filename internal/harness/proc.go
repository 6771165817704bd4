// Package harness starts and stops the processes that the acceptance tests and the benchmark
// (bench/cmd/vaultbench) run the plugin in: the Naver emulator, Vault servers (dev, file or
// Raft storage; initialised, unsealed, plugins registered) and anything else, each in its
// own process group with its output in a log file. Everything returns errors; the
// acceptance tests wrap it in t.Fatal helpers, the benchmark reports them.
//
// Only loopback addresses are used. Every wait is bounded.
package harness

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long Stop waits after SIGTERM before it kills the process
// group. Vault shuts its plugins down first, which can take a few seconds under load.
const DefaultStopTimeout = 20 * time.Second

// Proc is a child process running in its own process group, so that stopping it also
// stops what it started (Vault's plugin processes), with its output appended to a log file.
type Proc struct {
	Name    string
	LogPath string
	Cmd     *exec.Cmd
	done    chan struct{}
	err     error // Cmd.Wait's result; read only after done is closed
}

// StartProc starts bin with args and env (nil: an empty environment; see ChildEnv),
// appending its standard output and error to logPath.
func StartProc(name, logPath string, env []string, bin string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = env
	// Pdeathsig: if the test binary or the bench dies (a timeout panic, SIGKILL), the
	// child is told to stop too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group's id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process exited (nil for status 0); nil while it runs.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stop sends SIGTERM and waits up to timeout for the process to exit; if it does not, Stop
// kills its process group and returns an error saying so. Either way, whatever is left in
// the group afterwards (an orphaned plugin process) is killed too. Stopping a process that
// has exited only does the latter.
func (p *Proc) Stop(timeout time.Duration) error {
	var err error
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
			err = fmt.Errorf("%s did not stop within %s of SIGTERM; killed it", p.Name, timeout)
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.done
		}
	}
	// A process group's id is not reused while the group has members, so this reaches
	// only processes this one started.
	if syscall.Kill(-p.Pid(), 0) == nil {
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	}
	return err
}

// Tail returns the last n lines of the process's log, for failure messages.
func (p *Proc) Tail(n int) string { return TailFile(p.LogPath, n) }

// TailFile returns the last n lines of a file ("" if it cannot be read).
func TailFile(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Group keeps the processes started through it so that they can all be stopped at once,
// and can list their process groups in a file for a shell script to clean up after a crash.
// A nil *Group starts processes without keeping them.
type Group struct {
	// PIDFile, if set, gets the pid (= process group id) of every process started, one a line.
	PIDFile string

	mu    sync.Mutex
	procs []*Proc
}

// Start is StartProc, keeping the process in g.
func (g *Group) Start(name, logPath string, env []string, bin string, args ...string) (*Proc, error) {
	if g == nil {
		return StartProc(name, logPath, env, bin, args...)
	}
	// Under the lock, so that StopAll cannot run between the start and the bookkeeping.
	g.mu.Lock()
	defer g.mu.Unlock()
	p, err := StartProc(name, logPath, env, bin, args...)
	if err != nil {
		return nil, err
	}
	g.procs = append(g.procs, p)
	if g.PIDFile != "" {
		if err := appendLine(g.PIDFile, fmt.Sprint(p.Pid())); err != nil {
			return p, fmt.Errorf("recording the pid of %s: %w", name, err)
		}
	}
	return p, nil
}

// StopAll stops every process of g, newest first (Vault before the emulator), and returns
// what went wrong.
func (g *Group) StopAll(timeout time.Duration) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		errs = append(errs, procs[i].Stop(timeout))
	}
	return errors.Join(errs...)
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ChildEnv is the environment for child processes: ours without VAULT_* and BAO_* settings
// (a user's VAULT_ADDR or BAO_TOKEN must not reach a test's CLI or agent) plus extra.
func ChildEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "BAO_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// FreePortPair returns a free loopback port whose successor is free as well (Vault's
// cluster listener takes port+1).
func FreePortPair() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free pair of loopback ports in 50 tries")
}

// permanentError marks a condition that waiting cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that WaitFor gives up at once with it (say, the process it waits
// for has exited).
func Permanent(err error) error { return permanentError{err} }

// WaitFor calls cond every interval until it reports true, returns a Permanent error, or
// timeout has passed. The timeout error names what it waited for and the last error cond
// returned, if any (cond may return an error beside false to say why it is not there yet).
func WaitFor(timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return fmt.Errorf("waiting for %s: %w", what, perm.err)
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last == nil {
				return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
			}
			return fmt.Errorf("timed out after %s waiting for %s (last error: %w)", timeout, what, last)
		}
		time.Sleep(interval)
	}
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// NewClientSecret returns a random bcrypt salt of cost 4, as Naver issues client secrets.
// Its last character is one whose unused low bits are zero, so every bcrypt
// implementation reads the salt the same way.
func NewClientSecret() string {
	const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 22)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	b[21] = ".Oeu"[int(b[21])%4]
	return "$2a$04$" + string(b)
}
