package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestWaitFor(t *testing.T) {
	errNotYet := errors.New("not yet")
	tests := []struct {
		name    string
		results []error // what cond returns on each call; nil ends the wait successfully
		// after the results run out, cond keeps returning (false, last)
		last    error
		wantErr string // "" for success
		notErr  string // must not be in the error
		quick   bool   // must return well before the timeout
	}{
		{name: "succeeds on the third call", results: []error{errNotYet, errNotYet, nil}},
		{name: "times out naming the last error", results: []error{errors.New("first")}, last: errNotYet,
			wantErr: "timed out after 100ms waiting for the thing (last error: not yet)"},
		{name: "keeps the last real error when later calls give none", results: []error{errors.New("refused")}, last: errFalseNoReason,
			wantErr: "(last error: refused)", notErr: "<nil>"},
		{name: "says nothing of an error when there was none", last: errFalseNoReason,
			wantErr: "timed out after 100ms waiting for the thing", notErr: "last error"},
		{name: "gives up at once on a permanent error", results: []error{errNotYet}, last: Permanent(errors.New("it exited")),
			wantErr: "waiting for the thing: it exited", quick: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			start := time.Now()
			err := WaitFor(100*time.Millisecond, 5*time.Millisecond, "the thing", func() (bool, error) {
				calls++
				if calls <= len(tt.results) {
					r := tt.results[calls-1]
					return r == nil, r
				}
				if tt.last == errFalseNoReason {
					return false, nil
				}
				return false, tt.last
			})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
			case tt.notErr != "" && strings.Contains(err.Error(), tt.notErr):
				t.Fatalf("error %q must not contain %q", err, tt.notErr)
			}
			if tt.wantErr == "" && calls != len(tt.results) {
				t.Fatalf("cond called %d times, want %d", calls, len(tt.results))
			}
			if tt.quick && time.Since(start) > 50*time.Millisecond {
				t.Fatalf("took %s; a permanent error must end the wait at once", time.Since(start))
			}
		})
	}
}

// errFalseNoReason makes the test's cond return (false, nil).
var errFalseNoReason = errors.New("false without a reason")

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProcStopAndTail(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		body    string
		wantErr bool // Stop had to kill it
	}{
		{name: "stops on SIGTERM", body: "echo one; echo two; echo three; exec sleep 30\n"},
		// The shell ignores SIGTERM, and so does the sleep it starts in the background:
		// only the process group kill ends them.
		{name: "killed when it ignores SIGTERM", body: "trap '' TERM; echo one; echo two; echo three; sleep 30 & wait\n", wantErr: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := script(t, dir, fmt.Sprintf("p%d.sh", i), tt.body)
			var g Group
			g.PIDFile = filepath.Join(dir, fmt.Sprintf("pids%d", i))
			p, err := g.Start("test process", filepath.Join(dir, fmt.Sprintf("p%d.log", i)), ChildEnv(), bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := WaitFor(5*time.Second, 10*time.Millisecond, "three lines", func() (bool, error) {
				return p.Tail(2) == "two\nthree", nil
			}); err != nil {
				t.Fatalf("%v; log: %q", err, p.Tail(10))
			}
			if p.Exited() || p.Err() != nil {
				t.Fatalf("exited early: %v", p.Err())
			}
			pids, _ := os.ReadFile(g.PIDFile)
			if strings.TrimSpace(string(pids)) != strconv.Itoa(p.Pid()) {
				t.Fatalf("pid file holds %q, want %d", pids, p.Pid())
			}
			err = g.StopAll(300 * time.Millisecond)
			if (err != nil) != tt.wantErr {
				t.Fatalf("StopAll: %v, want an error: %v", err, tt.wantErr)
			}
			if !p.Exited() {
				t.Fatal("still running after Stop")
			}
			// Killed members stay in the group until reaped (by init): allow for that.
			if err := WaitFor(5*time.Second, 10*time.Millisecond, "the process group to empty", func() (bool, error) {
				return syscall.Kill(-p.Pid(), 0) != nil, nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStartProcMissingBinary(t *testing.T) {
	dir := t.TempDir()
	if _, err := StartProc("ghost", filepath.Join(dir, "log"), nil, filepath.Join(dir, "no-such-binary")); err == nil || !strings.Contains(err.Error(), "starting ghost") {
		t.Fatalf("want an error naming the process, got %v", err)
	}
}

func TestFreePortPair(t *testing.T) {
	port, err := FreePortPair()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{port, port + 1} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d of the pair is not free: %v", p, err)
		}
		l.Close()
	}
}

func TestNewClientSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		s := NewClientSecret()
		if len(s) != 29 || !strings.HasPrefix(s, "$2a$04$") || seen[s] {
			t.Fatalf("bad or repeated secret %q", s)
		}
		seen[s] = true
		// Naver's signer (the emulator's) must accept it.
		if _, err := navercommercetest.Sign("client", "1700000000000", s); err != nil {
			t.Fatalf("cannot sign with %q: %v", s, err)
		}
	}
}

func TestStartEmulator(t *testing.T) {
	dir := t.TempDir()
	// Stand-ins for the emulator: one writes its URL file as the real one does (the value
	// after -url-file), one exits at once.
	good := script(t, dir, "good.sh", `echo "$@" > "$(dirname "$0")/args"
while [ "$1" != "-url-file" ]; do shift; done
echo "http://127.0.0.1:43210/external" > "$2"
exec sleep 30
`)
	bad := script(t, dir, "bad.sh", "echo 'no such flag' >&2; exit 2\n")

	args := filepath.Join(dir, "args")
	em, err := StartEmulator(nil, EmulatorOptions{Bin: good, Dir: filepath.Join(dir, "good"), AccountIDs: []string{"a", "b"},
		TokenLifetime: time.Minute, ExtraArgs: []string{"-penalty=false"}})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Proc.Stop(time.Second)
	if em.URL != "http://127.0.0.1:43210/external" || em.Root != "http://127.0.0.1:43210" {
		t.Fatalf("URL %q, root %q", em.URL, em.Root)
	}
	if !strings.HasPrefix(em.ClientSecret, "$2a$04$") || em.ClientID == "" {
		t.Fatalf("no random application: %q %q", em.ClientID, em.ClientSecret)
	}
	got, _ := os.ReadFile(args)
	for _, want := range []string{"-listen 127.0.0.1:0 ", "-client-id " + em.ClientID + " ", "-account-ids a,b ", "-token-lifetime 1m0s ", " -penalty=false\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the emulator's arguments %q lack %q", got, want)
		}
	}
	if got := em.Key("SELLER", "a"); got != em.ClientID+"|SELLER|a" {
		t.Fatalf("Key: %q", got)
	}

	start := time.Now()
	_, err = StartEmulator(nil, EmulatorOptions{Bin: bad, Dir: filepath.Join(dir, "bad")})
	if err == nil || !strings.Contains(err.Error(), "the emulator exited") || !strings.Contains(err.Error(), "no such flag") {
		t.Fatalf("want the exit and the log's tail, got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s to notice the exit", time.Since(start))
	}
}
