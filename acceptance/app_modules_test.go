//go:build acceptance

package acceptance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
)

// The modules apps import (examples/python/navercommerce_vault.py with hvac,
// examples/node/navercommerce-vault.js with node-vault), driven step by step by a small
// program of the test's that imports them as an app would: each line on its standard input
// is a step ("call": call the API through the module; "read": read the token again from
// Vault), answered with the module's log lines, the outcome, and "done".

const pythonDriver = `
import logging, os, sys
import requests
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
from navercommerce_vault import NaverToken, NaverTokenError

token = NaverToken(os.environ["ROLE"], os.environ.get("ACCOUNT") or None,
                   mount=os.environ["MOUNT"], retry_wait=float(os.environ["RETRY_WAIT"]))
api = os.environ["API"]
for line in sys.stdin:
    try:
        if line.strip() == "read":
            token.read_again()
            print("outcome: read", flush=True)
        else:
            resp = token.call(lambda t: requests.get(
                api + "/v1/seller/account", headers={"Authorization": "Bearer " + t}, timeout=10))
            print(f"outcome: API {resp.status_code}", flush=True)
    except NaverTokenError as e:
        print(f"outcome: error {type(e).__name__}: {e}", flush=True)
    print("done", flush=True)
`

const nodeDriver = `
const { NaverToken, NaverTokenError } = require(process.env.MODULE);
const readline = require('readline');
const token = new NaverToken(process.env.ROLE, {
  accountId: process.env.ACCOUNT || null, mount: process.env.MOUNT,
  retryWait: Number(process.env.RETRY_WAIT) * 1000,
});
(async () => {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    try {
      if (line.trim() === 'read') {
        await token.readAgain();
        console.log('outcome: read');
      } else {
        const resp = await token.call((t) => fetch(process.env.API + '/v1/seller/account',
          { headers: { Authorization: 'Bearer ' + t } }));
        console.log('outcome: API ' + resp.status);
      }
    } catch (e) {
      if (!(e instanceof NaverTokenError)) throw e;
      console.log('outcome: error ' + e.name + ': ' + e.message);
    }
    console.log('done');
  }
})();
`

// appModule is one language's module, and how to run a driver of it.
type appModule struct {
	name    string
	command []string // the driver: interpreter and program
	env     []string // what the driver needs to find the module
}

// appModules installs the clients (apt-get, npm ci) and returns both modules.
func appModules(t *testing.T) []appModule {
	t.Helper()
	root := repoRoot(t)
	python := runScript(t, root, "scripts/install-python-hvac.sh")
	nodeDir := runScript(t, root, "scripts/install-node-vault.sh")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: %v", err)
	}
	return []appModule{
		{"python", []string{python, "-c", pythonDriver}, []string{"PYTHONPATH=" + filepath.Join(root, "examples", "python"), "PYTHONDONTWRITEBYTECODE=1"}},
		{"node", []string{node, "-e", nodeDriver}, []string{"MODULE=" + filepath.Join(nodeDir, "navercommerce-vault.js")}},
	}
}

// moduleDriver is a running driver.
type moduleDriver struct {
	stdin  io.WriteCloser
	lines  chan string
	mu     sync.Mutex
	output bytes.Buffer // everything it printed, for the hygiene scan
}

// driverOpts are a driver's settings.
type driverOpts struct {
	vaultAddr, vaultToken string
	role, account         string
	mount                 string        // default navercommerce
	retryWait             time.Duration // the module's first wait before a retry (default 100ms)
}

func startDriver(t *testing.T, m appModule, em *emulator, o driverOpts) *moduleDriver {
	t.Helper()
	if o.mount == "" {
		o.mount = "navercommerce"
	}
	if o.retryWait == 0 {
		o.retryWait = 100 * time.Millisecond
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, m.command[0], m.command[1:]...)
	cmd.Dir = dir
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"VAULT_ADDR=" + o.vaultAddr, "VAULT_TOKEN=" + o.vaultToken,
		"ROLE=" + o.role, "ACCOUNT=" + o.account, "MOUNT=" + o.mount, "API=" + em.URL,
		fmt.Sprintf("RETRY_WAIT=%g", o.retryWait.Seconds()),
	}, m.env...)
	d := &moduleDriver{lines: make(chan string, 1000)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &d.mu, w: &d.output}
	if d.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s driver: %v", m.name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.mu.Lock()
			d.output.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	t.Cleanup(func() {
		d.stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		d.mu.Lock()
		out := d.output.String()
		d.mu.Unlock()
		logPath := filepath.Join(dir, "driver.log")
		writeFile(t, logPath, out)
		hygiene(t).addLog(logPath)
		if match := accessTokenLike.FindString(out); match != "" {
			t.Errorf("the %s module's output holds something token-like (%d characters)", m.name, len(match))
		}
		if t.Failed() {
			t.Logf("the %s driver printed:\n%s", m.name, out)
		}
	})
	return d
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// step sends one step and returns what the driver printed for it, up to "done".
func (d *moduleDriver) step(t *testing.T, step string) string {
	t.Helper()
	out, err := d.stepWatching(step, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s:\n%s", step, out)
	return out
}

// stepWatching is step for any goroutine: onLine, if not nil, sees each line as it comes.
func (d *moduleDriver) stepWatching(step string, onLine func(string)) (string, error) {
	if _, err := io.WriteString(d.stdin, step+"\n"); err != nil {
		return "", fmt.Errorf("sending %q to the driver: %w", step, err)
	}
	var out strings.Builder
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				return out.String(), fmt.Errorf("the driver ended during %q:\n%s", step, out.String())
			}
			if line == "done" {
				return out.String(), nil
			}
			out.WriteString(line + "\n")
			if onLine != nil {
				onLine(line)
			}
		case <-deadline:
			return out.String(), fmt.Errorf("no answer to %q in 2 minutes:\n%s", step, out.String())
		}
	}
}

// outcome is the outcome line of a step's output.
func outcome(out string) string { return firstLine(out, "outcome: ") }

// appToken creates a Vault token whose only policy allows reading path.
func appToken(t *testing.T, v *vaultProc, name, path string) string {
	t.Helper()
	if err := v.api.Sys().PutPolicy(name, fmt.Sprintf(`path %q { capabilities = ["read"] }`, path)); err != nil {
		t.Fatalf("writing policy %s: %v", name, err)
	}
	created, err := v.api.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{name}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	return created.Auth.ClientToken
}

// TestAppModulesTokenRefusedByTheAPI: one seller of a many-seller role (an account ID with
// URL and shell metacharacters) read through each module. When the API answers 401 and
// Vault has a new token, the module reads once more and the call succeeds. When Vault still
// serves the refused token, the module reads once more, then says what to ask the operator:
// the drop recipe's command line, which — run as written, quoting and all — drops the
// token, after which the next call succeeds. Every read names the role and the account.
func TestAppModulesTokenRefusedByTheAPI(t *testing.T) {
	t.Parallel()
	modules := appModules(t)
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	admin := adminToken(t, v)

	for _, m := range modules {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			role := m.name + "-sellers"
			account := "ncp_mod_" + m.name + sellerAccountID[len("ncp"):]
			path := role + "/" + account
			v.write(t, "navercommerce/roles/"+role, "type=SELLER", "allowed_account_ids=ncp_mod_"+m.name+"_*")
			d := startDriver(t, m, em, driverOpts{
				vaultAddr: v.addr, vaultToken: appToken(t, v, "mod-"+role, "navercommerce/token/"+path),
				role: role, account: account,
			})
			reads := "read token of role " + role + ", account " + account
			rereads := func(out string) int { return strings.Count(out, reads+" (refused by the API)") }

			out := d.step(t, "call")
			if outcome(out) != "outcome: API 200" || !strings.Contains(out, reads+" (first read): lease ") {
				t.Fatalf("the first call: %s", out)
			}

			// The token dies at Naver, and Vault drops it: the module reads again once and
			// gets the new token.
			em.killToken(t, v.readToken(t, "navercommerce", path).AccessToken)
			if _, err := v.api.Logical().Delete("navercommerce/token/" + path); err != nil {
				t.Fatal(err)
			}
			out = d.step(t, "call")
			if outcome(out) != "outcome: API 200" || rereads(out) != 1 || !strings.Contains(out, "API 401 to the token of role "+role+", account "+account+": reading it again from Vault") {
				t.Errorf("after a refused token Vault had replaced, the call: %s", out)
			}

			// The token dies at Naver and Vault still serves it.
			em.killToken(t, v.readToken(t, "navercommerce", path).AccessToken)
			out = d.step(t, "call")
			got := outcome(out)
			if !strings.HasPrefix(got, "outcome: error TokenRefused: the Naver Commerce API answered 401 to the token of role "+role+", account "+account+", and Vault still serves the token Naver refused.") || rereads(out) != 1 {
				t.Fatalf("after a refused token Vault still serves, the call: %s", out)
			}
			quotedPath := `'navercommerce/token/` + strings.ReplaceAll(path, `'`, `'"'"'`) + `'`
			if m.name == "node" {
				quotedPath = `'navercommerce/token/` + strings.ReplaceAll(path, `'`, `'\''`) + `'`
			}
			if !strings.Contains(got, "(it runs vault delete "+quotedPath+" once Naver refuses the token with 401)") {
				t.Errorf("the message does not give the vault delete command %s: %s", quotedPath, got)
			}
			recipeLine := regexp.MustCompile(`drop recipe: (.*) \(it runs vault delete `).FindStringSubmatch(got)
			if recipeLine == nil {
				t.Fatalf("the message gives no drop recipe: %s", got)
			}
			if v.env.server == harness.ServerOpenBao {
				// The recipes are written for the vault CLI (see recipe): drop as they would.
				if _, err := v.api.Logical().Delete("navercommerce/token/" + path); err != nil {
					t.Fatal(err)
				}
			} else {
				// The operator runs it as written, from the repository's root.
				operator := exec.Command("bash", "-c", recipeLine[1])
				operator.Dir = repoRoot(t)
				operator.Env = childEnv("VAULT_ADDR="+v.addr, admin, "NAVER_COMMERCE_API_URL="+em.URL, "HOME="+t.TempDir(),
					"PATH="+filepath.Dir(v.env.vaultBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
				dropped, err := operator.CombinedOutput()
				t.Logf("%s:\n%s", recipeLine[1], dropped)
				if err != nil || !strings.Contains(string(dropped), "dropped: role "+role+", SELLER account "+account+": cached=false") {
					t.Fatalf("the drop recipe the message gives failed: %v", err)
				}
			}

			out = d.step(t, "call")
			if outcome(out) != "outcome: API 200" || rereads(out) != 1 {
				t.Errorf("after the operator dropped the token, the call: %s", out)
			}
			if n := em.stats(t).Keys[em.key("SELLER", account)].Requests; n != 3 {
				t.Errorf("%d token requests for %s, want 3 (the first, after Vault's drop, after the operator's)", n, account)
			}
		})
	}
}

// TestAppModulesVaultErrors: each module against a real Vault behind a proxy that fails
// requests first. Vault's 5xx and cut connections are retried, a bounded number of times
// (3), and a read succeeds when Vault answers within them; past them the module gives up
// saying why, after exactly 4 requests. A 403 says that the Vault token or its policy is
// wrong and which path to grant; a 404 (no such mount) and a 400 (an account the role does
// not allow) say what Vault answered, without retrying.
func TestAppModulesVaultErrors(t *testing.T) {
	t.Parallel()
	modules := appModules(t)
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)

	for _, m := range modules {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			role := m.name + "-sellers"
			account := "ncp_err_" + m.name
			v.write(t, "navercommerce/roles/"+role, "type=SELLER", "allowed_account_ids=ncp_err_"+m.name+"*")
			proxy := startVaultProxy(t, v)
			token := appToken(t, v, "err-"+role, "navercommerce/token/"+role+"/*")
			d := startDriver(t, m, em, driverOpts{vaultAddr: proxy.URL, vaultToken: token, role: role, account: account})
			retries := func(out string) int { return strings.Count(out, "; retry ") }

			tests := []struct {
				name         string
				rest         proxyAction
				plan         []proxyAction
				wantOutcome  string
				wantRequests int
			}{
				{"two 503s, then Vault", forward, []proxyAction{answer(503), answer(503)}, "outcome: read", 3},
				{"three cut connections, then Vault", forward, []proxyAction{cut, cut, cut}, "outcome: read", 4},
				{"502 for ever", answer(502), nil, "outcome: error VaultUnavailable: reading navercommerce/token/" + role + "/" + account + ": Vault at " + proxy.URL + " answered 502: the test's proxy answered Bad Gateway (gave up after 4 attempts)", 4},
				{"down for ever", cut, nil, "outcome: error VaultUnavailable: reading navercommerce/token/" + role + "/" + account + ": cannot reach Vault at " + proxy.URL + ": ", 4},
			}
			for _, tt := range tests {
				proxy.then(tt.rest, tt.plan...)
				out := d.step(t, "read")
				if got := outcome(out); !strings.HasPrefix(got, tt.wantOutcome) {
					t.Errorf("%s: %q, want %q", tt.name, got, tt.wantOutcome)
				}
				if n := proxy.count(); n != tt.wantRequests {
					t.Errorf("%s: %d requests reached Vault's address, want %d", tt.name, n, tt.wantRequests)
				}
				if n := retries(out); n != tt.wantRequests-1 {
					t.Errorf("%s: the module logged %d retries, want %d", tt.name, n, tt.wantRequests-1)
				}
			}
			proxy.then(forward)

			// Vault's own refusals: no retry.
			refusals := []struct {
				name string
				o    driverOpts
				want []string
			}{
				{"403: a token of another policy", driverOpts{vaultToken: appToken(t, v, "other-"+role, "navercommerce/token/other"), role: role, account: account},
					[]string{"error VaultPermissionDenied: Vault refused to read navercommerce/token/" + role + "/" + account + ": 403 permission denied.", "not valid (expired, revoked, mistyped), or its policy does not allow reading this path", `path "navercommerce/token/` + role + "/" + account + `" { capabilities = ["read"] }`}},
				{"403: no Vault token", driverOpts{role: role, account: account},
					[]string{"error VaultPermissionDenied: Vault refused to read", "403"}},
				{"404: no such mount", driverOpts{vaultToken: v.token, mount: "nothing-here", role: role, account: account},
					[]string{"error VaultRefused: Vault answered 404 to nothing-here/token/" + role + "/" + account, "Nothing is mounted there: check the mount (nothing-here)"}},
				{"400: an account the role does not allow", driverOpts{vaultToken: v.token, role: role, account: "other_1"},
					[]string{"error VaultRefused: Vault answered 400 to navercommerce/token/" + role + "/other_1: ", `"other_1" is not one of the sellers role "` + role + `" allows`}},
			}
			for _, r := range refusals {
				r.o.vaultAddr = proxy.URL
				proxy.then(forward)
				out := startDriver(t, m, em, r.o).step(t, "read")
				for _, w := range r.want {
					if !strings.Contains(outcome(out), w) {
						t.Errorf("%s: %q lacks %q", r.name, outcome(out), w)
					}
				}
				if n := proxy.count(); n != 1 {
					t.Errorf("%s: %d requests, want 1 (no retry)", r.name, n)
				}
			}
		})
	}
}

// TestAppModulesSealedVault: a real Vault's 503 ("Vault is sealed"). A read that begins
// while Vault is sealed succeeds once it is unsealed within the retries; a read through a
// Vault that stays sealed gives up after 4 attempts with Vault's message.
func TestAppModulesSealedVault(t *testing.T) {
	t.Parallel()
	modules := appModules(t)
	em := startEmulator(t, emulatorOpts{})
	v := startFileVault(t)
	v.registerPlugin(t)
	v.enable(t, "navercommerce")
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_sealed_*")

	var drivers []*moduleDriver
	for _, m := range modules {
		// Retries wait 2, 4 and 5 s: time enough to unseal.
		drivers = append(drivers, startDriver(t, m, em, driverOpts{vaultAddr: v.addr, vaultToken: v.token, role: "sellers", account: "ncp_sealed_" + m.name, retryWait: 2 * time.Second}))
	}
	for i, d := range drivers {
		v.cli(t, "operator", "seal")
		sawRetry := make(chan struct{})
		var once sync.Once
		var out string
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			out, err = d.stepWatching("read", func(line string) {
				if strings.Contains(line, "answered 503: Vault is sealed; retry 1 of 3") {
					once.Do(func() { close(sawRetry) })
				}
			})
		}()
		select {
		case <-sawRetry:
		case <-done:
		}
		v.unseal(t)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("read while sealed, then unsealed:\n%s", out)
		if outcome(out) != "outcome: read" || !strings.Contains(out, "retry 1 of 3") {
			t.Errorf("%s: a read while Vault was sealed for a moment: %s", modules[i].name, out)
		}
	}

	v.cli(t, "operator", "seal")
	for i, m := range modules {
		d := startDriver(t, m, em, driverOpts{vaultAddr: v.addr, vaultToken: v.token, role: "sellers", account: "ncp_sealed_" + m.name, retryWait: 10 * time.Millisecond})
		out := d.step(t, "read")
		if !strings.HasPrefix(outcome(out), "outcome: error VaultUnavailable: ") || !strings.Contains(out, "answered 503: Vault is sealed (gave up after 4 attempts)") {
			t.Errorf("%s: a read while Vault stays sealed: %s", modules[i].name, out)
		}
	}
	v.unseal(t)
}
