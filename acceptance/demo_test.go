//go:build acceptance

package acceptance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
)

// demoCopy is a copy of the repository's scripts in a test directory, where scripts/demo.sh
// runs as `make demo` runs it, on ports of its own, neither seeing nor stopping a demo the
// developer runs.
type demoCopy struct {
	root                    string
	vaultPort, emulatorPort int
	env                     []string
}

func newDemoCopy(t *testing.T, e env) *demoCopy {
	t.Helper()
	if e.server == harness.ServerOpenBao {
		// make demo installs and runs the pinned Vault (its `vault` CLI, its agent flags);
		// the OpenBao commands are in README "OpenBao" and the other tests.
		t.Skip("make demo is a recipe for the pinned Vault, not for OpenBao")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	root := mkdir(t, testDir(t, "demo-root"))
	if out, err := exec.Command("cp", "-R", filepath.Join(repo, "scripts"), root).CombinedOutput(); err != nil {
		t.Fatalf("copying scripts/: %v\n%s", err, out)
	}
	// The examples are only read (and examples/node gets its node_modules, as for a user).
	if err := os.Symlink(filepath.Join(repo, "examples"), filepath.Join(root, "examples")); err != nil {
		t.Fatal(err)
	}
	d := &demoCopy{root: root}
	if d.vaultPort, err = harness.FreePortPair(); err != nil {
		t.Fatal(err)
	}
	if d.emulatorPort, err = harness.FreePortPair(); err != nil {
		t.Fatal(err)
	}
	d.env = []string{"VAULT_BIN=" + e.vaultBin, "PLUGIN_VERSION=" + e.pluginVersion, "PLUGIN_BIN=" + e.pluginBin,
		"EMULATOR_BIN=" + e.emulatorBin, "DEMO_VAULT_PORT=" + strconv.Itoa(d.vaultPort), "DEMO_EMULATOR_PORT=" + strconv.Itoa(d.emulatorPort)}
	t.Cleanup(func() {
		if out, err := d.run(time.Minute, nil, "stop"); err != nil {
			t.Errorf("demo.sh stop: %v\n%s", err, out)
		}
		if left := d.leftRunning(); len(left) > 0 {
			t.Errorf("processes of the demo still run after demo.sh stop:\n%s", strings.Join(left, "\n"))
		}
	})
	return d
}

// run runs scripts/demo.sh with args (and env on top of the demo's), for at most limit: a
// script that hangs fails the test instead of holding up the run.
func (d *demoCopy) run(limit time.Duration, env []string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(d.root, "scripts", "demo.sh"), args...)
	cmd.Dir = d.root
	cmd.Env = childEnv(append(append([]string{}, d.env...), env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("demo.sh %s did not return within %v: it hangs", strings.Join(args, " "), limit)
	}
}

// wrapper writes an executable shell script named name in the copy and returns its path.
func (d *demoCopy) wrapper(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(d.root, "wrappers", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// leftRunning describes the processes (other than zombies) whose command line names the copy's
// directory: the demo's processes, their wrappers and whatever those started. It waits up to
// 5 s for processes that were just killed to go.
func (d *demoCopy) leftRunning() []string {
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = left[:0]
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, dir := range dirs {
			cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
			if err != nil || !bytes.Contains(cmdline, []byte(d.root)) {
				continue
			}
			if stat, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil {
				if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
					continue
				}
			}
			left = append(left, filepath.Base(dir)+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
	}
}

// emulatorRoot is the demo emulator's address, where its admin API is.
func (d *demoCopy) emulatorRoot(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.root, ".demo", "emulator.url"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(strings.TrimSpace(string(b)), "/external")
}

// tokenValid asks the demo's emulator whether it takes token.
func (d *demoCopy) tokenValid(t *testing.T, token string) bool {
	t.Helper()
	res, err := http.PostForm(d.emulatorRoot(t)+"/_emulator/verify", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v struct{ Valid bool }
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/_emulator/verify: %d %v", res.StatusCode, err)
	}
	return v.Valid
}

func (d *demoCopy) renderedToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.root, ".demo", "token.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestDemoIsARecipe runs `scripts/demo.sh start` as `make demo` does, then runs the commands
// it prints for the Python and Node.js examples exactly as printed. The demo's emulator knows
// the demo's sellers only: a typo in an account_id is refused with the hint that fits it.
// Then the rotation recipe as the demo offers it: the secret re-issued, written to Vault, and
// `demo.sh restart-agent` renders a working token where the old agent kept the dead one.
func TestDemoIsARecipe(t *testing.T) {
	e := requireEnv(t)
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	d := newDemoCopy(t, e)
	out, err := d.run(5*time.Minute, nil, "start")
	if err != nil {
		t.Fatalf("demo.sh start: %v\n%s", err, out)
	}
	checkReadmePointers(t, "what demo.sh start prints", out, 2)

	// The status is printed readably, not as Go maps.
	if strings.Contains(out, "map[") || !regexp.MustCompile(`(?m)^\s*-?\s*account_id: ncp_demo_seller$`).MatchString(out) {
		t.Errorf("the demo's status is not readable YAML:\n%s", out)
	}

	apps := map[string]string{"python": "examples/python/app.py", "node": "app.js"}
	for name, marker := range apps {
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, marker) {
				line = strings.TrimSpace(l)
			}
		}
		if line == "" {
			t.Errorf("the demo prints no command for the %s example:\n%s", name, out)
			continue
		}
		cmd := exec.Command("bash", "-c", line)
		cmd.Dir = d.root
		cmd.Env = childEnv()
		got, err := cmd.CombinedOutput()
		if err != nil || strings.Count(string(got), "API 200: account ncp_demo_seller (SELLER)") != 3 {
			t.Errorf("the %s example as the demo prints it:\n$ %s\n%v\n%s", name, line, err, got)
		}
	}

	// A typo in a seller's account ID: refused by the demo's emulator, with the fitting hint.
	client, err := harness.NewClient("http://127.0.0.1:"+strconv.Itoa(d.vaultPort), "demo-root-token")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Logical().Write("navercommerce/roles/typo", map[string]any{"type": "SELLER", "account_id": "ncp_demo_seler"}); err != nil {
		t.Fatal(err)
	}
	_, err = client.Logical().Read("navercommerce/token/typo")
	requireStatus(t, err, 400, `account_id "ncp_demo_seler"`, "check the role's account_id")

	// The rotation: the API center re-issues the secret (the agent's token dies with the old
	// one), Vault gets the new one, and the agent keeps the dead token until it is restarted.
	const newSecret = "$2a$04$NaverCommerceDemo5678u"
	old := d.renderedToken(t)
	res, err := http.Post(d.emulatorRoot(t)+"/_emulator/client-secret", "application/json",
		strings.NewReader(`{"client_id": "naverDemoClientId01", "client_secret": "`+newSecret+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("re-issuing the secret at the emulator: %d", res.StatusCode)
	}
	if _, err := client.Logical().Write("navercommerce/config", map[string]any{"client_secret": newSecret}); err != nil {
		t.Fatal(err)
	}
	if d.tokenValid(t, old) {
		t.Fatal("the agent's token survived the re-issue of the secret: the restart below proves nothing")
	}
	out, err = d.run(3*time.Minute, nil, "restart-agent")
	if err != nil {
		t.Fatalf("demo.sh restart-agent: %v\n%s", err, out)
	}
	if now := d.renderedToken(t); now == old || !d.tokenValid(t, now) {
		t.Fatalf("after demo.sh restart-agent the agent rendered a token the emulator refuses (new: %v)\n%s", now != old, out)
	}
	if out, err := d.run(time.Minute, nil, "status"); err != nil || strings.Count(out, ": running (pid ") != 3 {
		t.Fatalf("demo.sh status after restart-agent: %v\n%s", err, out)
	}
}

// TestDemoStartsWhenItsProgramsAreSlowToExec widens the window between the fork of a demo
// process and the exec of its program (which setsid, a loaded machine or a wrapper opens):
// each of the emulator, Vault and the agent pauses 3 s before its program runs. The demo
// must wait for them, neither taking a starting process for ended nor waiting for ever, and
// `stop` must stop them, wrappers and all.
func TestDemoStartsWhenItsProgramsAreSlowToExec(t *testing.T) {
	e := requireEnv(t)
	d := newDemoCopy(t, e)
	// The wrappers' names hold neither "navercommerce-emulator" nor "vault server", the
	// command lines of the programs they run.
	slowEmulator := d.wrapper(t, "emulator-after-a-pause", "sleep 3\nexec "+shellQuote(e.emulatorBin)+` "$@"`+"\n")
	slowVault := d.wrapper(t, "vault-after-a-pause", `case "$1" in server|agent) sleep 3 ;; esac`+"\nexec "+shellQuote(e.vaultBin)+` "$@"`+"\n")
	env := []string{"EMULATOR_BIN=" + slowEmulator, "VAULT_BIN=" + slowVault}
	out, err := d.run(5*time.Minute, env, "start")
	if err != nil {
		t.Fatalf("demo.sh start with programs slow to exec: %v\n%s", err, out)
	}
	tok := d.renderedToken(t)
	if !d.tokenValid(t, tok) {
		t.Fatalf("the agent rendered a token the emulator refuses\n%s", out)
	}
	out, err = d.run(3*time.Minute, env, "restart-agent")
	if err != nil {
		t.Fatalf("demo.sh restart-agent with an agent slow to exec: %v\n%s", err, out)
	}
	if !d.tokenValid(t, d.renderedToken(t)) {
		t.Fatalf("the restarted agent rendered a token the emulator refuses\n%s", out)
	}
	// Stopped at once after a start: the agent restarted is still in its wrapper's pause.
	out, err = d.run(time.Minute, env, "stop")
	if err != nil {
		t.Fatalf("demo.sh stop: %v\n%s", err, out)
	}
	if left := d.leftRunning(); len(left) > 0 {
		t.Fatalf("demo.sh stop left processes running:\n%s\n%s", strings.Join(left, "\n"), out)
	}
}

// TestDemoFailsClearly: a demo that cannot start says why within its deadline, shows the log
// of the process that failed, and leaves nothing running.
func TestDemoFailsClearly(t *testing.T) {
	e := requireEnv(t)
	cases := []struct {
		name string
		// setup returns the environment the start runs with.
		setup func(t *testing.T, d *demoCopy) []string
		// interrupt, if set, is sent to demo.sh once the emulator has a pid file, after during.
		interrupt syscall.Signal
		during    func(t *testing.T, d *demoCopy, env []string)
		want      []string
	}{
		{
			name: "the emulator ends at once",
			setup: func(t *testing.T, d *demoCopy) []string {
				return []string{"EMULATOR_BIN=" + d.wrapper(t, "ends", "echo 'cannot start: no reason' >&2\nexit 3\n")}
			},
			want: []string{"the emulator (", "exited with status 3", "cannot start: no reason", "stopping what was started"},
		},
		{
			name: "the emulator is never ready",
			setup: func(t *testing.T, d *demoCopy) []string {
				return []string{"EMULATOR_BIN=" + d.wrapper(t, "never-ready", "echo 'thinking' >&2\nsleep 600\n"), "DEMO_START_TIMEOUT=2"}
			},
			want: []string{"was not ready within 2s (DEMO_START_TIMEOUT)", "thinking", "stopped emulator"},
		},
		{
			name: "the emulator's port is taken",
			setup: func(t *testing.T, d *demoCopy) []string {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(d.emulatorPort))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				return nil
			},
			want: []string{"127.0.0.1:", "(the emulator (DEMO_EMULATOR_PORT)) is in use"},
		},
		{
			name: "Vault ends at once",
			setup: func(t *testing.T, d *demoCopy) []string {
				return []string{"VAULT_BIN=" + d.wrapper(t, "vault-ends",
					`if [ "$1" = server ]; then echo 'no vault today' >&2; exit 1; fi`+"\nexec "+shellQuote(e.vaultBin)+` "$@"`+"\n")}
			},
			want: []string{"Vault (", "exited with status 1", "no vault today", "stopped emulator"},
		},
		{
			name: "Vault dies once ready",
			setup: func(t *testing.T, d *demoCopy) []string {
				pidFile := filepath.Join(d.root, ".demo", "vault.pid")
				return []string{"VAULT_BIN=" + d.wrapper(t, "vault-dies",
					`if [ "$1" = plugin ]; then kill -KILL "$(cat `+shellQuote(pidFile)+`)"; sleep 1; fi`+"\nexec "+shellQuote(e.vaultBin)+` "$@"`+"\n")}
			},
			want: []string{"registering the plugin failed", "meanwhile Vault (", "was killed by signal 9 (SIGKILL)", "stopped emulator"},
		},
		{
			name: "interrupted while the emulator starts",
			setup: func(t *testing.T, d *demoCopy) []string {
				return []string{"EMULATOR_BIN=" + d.wrapper(t, "slow", "sleep 600\n")}
			},
			interrupt: syscall.SIGTERM,
			want:      []string{"interrupted by SIGTERM while starting", "stopped emulator"},
		},
		{
			// A second start would stop the first one's processes and take over its pid files.
			name: "a second start while one runs",
			setup: func(t *testing.T, d *demoCopy) []string {
				return []string{"EMULATOR_BIN=" + d.wrapper(t, "slow", "sleep 600\n")}
			},
			during: func(t *testing.T, d *demoCopy, env []string) {
				pid, err := os.ReadFile(filepath.Join(d.root, ".demo", "emulator.pid"))
				if err != nil {
					t.Fatal(err)
				}
				out, err := d.run(time.Minute, env, "start")
				var exit *exec.ExitError
				if !errors.As(err, &exit) || !strings.Contains(out, "another scripts/demo.sh start or restart-agent is running") {
					t.Errorf("a second demo.sh start: %v, want a refusal\n%s", err, out)
				}
				if again, err := os.ReadFile(filepath.Join(d.root, ".demo", "emulator.pid")); err != nil || !bytes.Equal(again, pid) {
					t.Errorf("the second start touched the first one's emulator: pid file %q, was %q (%v)", again, pid, err)
				}
			},
			interrupt: syscall.SIGINT,
			want:      []string{"interrupted by SIGINT while starting", "stopped emulator"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDemoCopy(t, e)
			env := tc.setup(t, d)
			var out string
			var err error
			if tc.interrupt == 0 {
				out, err = d.run(2*time.Minute, env, "start")
			} else {
				out, err = d.interrupted(t, env, tc.interrupt, tc.during)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("demo.sh start: %v, want a failure\n%s", err, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("the failure does not say %q:\n%s", want, out)
				}
			}
			if left := d.leftRunning(); len(left) > 0 {
				t.Errorf("a failed start left processes running:\n%s\n%s", strings.Join(left, "\n"), out)
			}
			if status, err := d.run(time.Minute, nil, "status"); err != nil || strings.Contains(status, "running") {
				t.Errorf("demo.sh status after a failed start: %v\n%s", err, status)
			}
		})
	}
}

// interrupted starts the demo, runs during (if set) once the emulator has a pid file, then
// sends sig to demo.sh, and returns what demo.sh printed and how it ended; it must end within
// 30 s of the signal.
func (d *demoCopy) interrupted(t *testing.T, env []string, sig syscall.Signal, during func(*testing.T, *demoCopy, []string)) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(d.root, "scripts", "demo.sh"), "start")
	cmd.Dir = d.root
	cmd.Env = childEnv(append(append([]string{}, d.env...), env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, time.Minute, 50*time.Millisecond, "the emulator's pid file", func() (bool, error) {
		_, err := os.Stat(filepath.Join(d.root, ".demo", "emulator.pid"))
		return err == nil, nil
	})
	if during != nil {
		during(t, d, env)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("demo.sh did not end within 30 s of %v:\n%s", sig, out.String())
		return "", nil
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestDemoPointsToHeadingsOfBothReadmes: every README heading demo.sh names (in what it
// prints) is a heading of the README it names, README.md or README.ko.md, and each pointer
// comes in both languages. TestDemoIsARecipe checks what a started demo prints the same way.
func TestDemoPointsToHeadingsOfBothReadmes(t *testing.T) {
	script, err := os.ReadFile("../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	var printed []string // comments are for developers
	for _, line := range strings.Split(string(script), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			printed = append(printed, line)
		}
	}
	checkReadmePointers(t, "scripts/demo.sh", strings.Join(printed, "\n"), 4)
}

var (
	// readmePointer is how the demo names a README section: README.md "Heading".
	readmePointer = regexp.MustCompile(`README(?:\.ko)?\.md "[^"\n]+"`)
	// readmeQuote is any README followed by a quoted name: each must be a readmePointer.
	readmeQuote = regexp.MustCompile(`README\S*\s*"[^"\n]*"`)
)

// checkReadmePointers fails the test for each problem readmePointerProblems finds in text.
func checkReadmePointers(t *testing.T, what, text string, min int) {
	t.Helper()
	problems, err := readmePointerProblems(text, min)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s %s", what, p)
	}
}

// readmePointerProblems checks the README pointers in text (at least min of them): each names
// README.md or README.ko.md and a heading that file has, and there are as many into each.
func readmePointerProblems(text string, min int) ([]string, error) {
	headings := map[string]map[string]bool{}
	for _, file := range []string{"README.md", "README.ko.md"} {
		b, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			return nil, err
		}
		headings[file] = markdownHeadings(string(b))
	}
	var problems []string
	count := map[string]int{}
	for _, q := range readmeQuote.FindAllString(text, -1) {
		if readmePointer.FindString(q) != q {
			problems = append(problems, fmt.Sprintf("points to %s: name README.md or README.ko.md and the heading", q))
			continue
		}
		file, heading, _ := strings.Cut(q, ` "`)
		heading = strings.TrimSuffix(heading, `"`)
		count[file]++
		if !headings[file][heading] {
			problems = append(problems, fmt.Sprintf("points to %s, but %s has no heading %q", q, file, heading))
		}
	}
	if n := count["README.md"] + count["README.ko.md"]; n < min {
		problems = append(problems, fmt.Sprintf("points to %d README headings, want at least %d (is the pointer format still README.md \"Heading\"?)", n, min))
	}
	if count["README.md"] != count["README.ko.md"] {
		problems = append(problems, fmt.Sprintf("points to %d headings of README.md but %d of README.ko.md: give each in both languages", count["README.md"], count["README.ko.md"]))
	}
	return problems, nil
}

// markdownHeadings are the texts of the ATX headings of a Markdown document, outside fenced
// code blocks (where "# ..." is a shell comment).
func markdownHeadings(doc string) map[string]bool {
	headings := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if m := regexp.MustCompile(`^#{1,6} (.+?)\s*$`).FindStringSubmatch(line); m != nil {
			headings[m[1]] = true
		}
	}
	return headings
}

// TestDemoReadmeCheckFunctions: the heading check sees through code fences and refuses a
// pointer that does not name the file, so TestDemoPointsToHeadingsOfBothReadmes can fail.
func TestDemoReadmeCheckFunctions(t *testing.T) {
	h := markdownHeadings("# Title\n\n```bash\n# a comment\n```\n### Sub heading  \n")
	if !h["Title"] || !h["Sub heading"] || h["a comment"] || len(h) != 2 {
		t.Fatalf("markdownHeadings: %v", h)
	}
	for _, tc := range []struct {
		text string
		bad  bool
	}{
		{`README.md "Operations", README.ko.md "운영"`, false},
		{`(README: "Operations")`, true},
		{`README.md "No such heading", README.ko.md "운영"`, true},
		{`README.md "Operations"`, true},
	} {
		problems, err := readmePointerProblems(tc.text, 1)
		if err != nil {
			t.Fatal(err)
		}
		if bad := len(problems) > 0; bad != tc.bad {
			t.Errorf("readmePointerProblems(%q) = %q, want problems: %v", tc.text, problems, tc.bad)
		}
	}
}
