//go:build acceptance

package acceptance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// The apps' token lifetime: short enough that an app re-reads within the test, long enough
// that the re-read (at 90% of the remaining life, so with 3 s left) comes before expiry even
// on a busy machine. The plugin's own window is fixed at 30 minutes, so it asks the emulator
// at every read that is 10 s or more after its last request; the emulator mints a new token
// once the current one has less than appReuse left.
const (
	appTokenLifetime = 30 * time.Second
	appReuse         = 20 * time.Second
	// API calls one second apart: the run spans one re-read of each token.
	appIterations = 34
)

// accessTokenLike matches a run of characters as long as an emulator token (32 random bytes,
// base64url): an app's output holds nothing of the kind.
var accessTokenLike = regexp.MustCompile(`[A-Za-z0-9_-]{40,}`)

// TestApps runs examples/python (hvac) and examples/node (node-vault) against a real Vault
// and the emulator, each on a leased and a lease-free role: the app gets a token with an
// application token that may read only its role's token, the protected API answers 200
// with it at every call, the app reads again when the lease (or, lease-free, expires_in)
// says so and before the token expires (no 401 ever forces it), and neither the client
// secret nor any token is in the app's output. The app's environment is built from
// nothing: Vault's address and token, the role, the API URL, PATH and HOME.
func TestApps(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	em := startEmulator(t, emulatorOpts{TokenLifetime: appTokenLifetime, ReuseThreshold: appReuse})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	// After every app has run (the subtests are parallel): no needless request reached Naver.
	t.Cleanup(func() {
		if st := em.stats(t); len(st.Violations) > 0 {
			t.Errorf("the emulator recorded violations: %v", st.Violations)
		}
	})

	apps := []struct {
		name    string
		install func(t *testing.T) []string // returns the command that runs the app
	}{
		{"python", func(t *testing.T) []string {
			python := runScript(t, root, "scripts/install-python-hvac.sh")
			return []string{python, filepath.Join(root, "examples", "python", "app.py")}
		}},
		{"node", func(t *testing.T) []string {
			dir := runScript(t, root, "scripts/install-node-vault.sh")
			node, err := exec.LookPath("node")
			if err != nil {
				t.Fatalf("node is not on PATH: %v", err)
			}
			return []string{node, filepath.Join(dir, "app.js")}
		}},
	}
	for _, app := range apps {
		t.Run(app.name, func(t *testing.T) {
			t.Parallel()
			command := app.install(t)
			for _, leased := range []bool{true, false} {
				mode := map[bool]string{true: "leased", false: "lease-free"}[leased]
				t.Run(mode, func(t *testing.T) {
					t.Parallel()
					// One account per run: runs do not share a cached token.
					role := app.name + "-" + mode
					account := "ncp_app_" + strings.ReplaceAll(role, "-", "_")
					fields := []string{"type=SELLER", "account_id=" + account}
					if !leased {
						fields = append(fields, "lease=false") // leased is the default
					}
					v.write(t, "navercommerce/roles/"+role, fields...)
					out := runApp(t, v, em, command, role)

					if n := strings.Count(out, "API 200: account "+account+" (SELLER)"); n != appIterations {
						t.Errorf("%d of %d API calls answered 200 for %s:\n%s", n, appIterations, account, out)
					}
					wantKind := "lease "
					if !leased {
						wantKind = "no lease"
					}
					if first := firstLine(out, "read token (first read): "); !strings.Contains(first, wantKind) {
						t.Errorf("the first read says %q, want %q", first, wantKind)
					}
					if n := strings.Count(out, "read token (due)"); n < 1 {
						t.Errorf("the app never read again when its token was due:\n%s", out)
					}
					if strings.Contains(out, "refused") {
						t.Errorf("a token was refused by the API: the app read again too late:\n%s", out)
					}
					if n := em.stats(t).Keys[em.key("SELLER", account)].Requests; n < 2 {
						t.Errorf("the emulator counted %d token requests for %s, want a new token within the run", n, account)
					}
				})
			}
		})
	}
}

// runApp runs an example app until it has made appIterations API calls, with a token that
// may read only role's token, and returns its output.
func runApp(t *testing.T, v *vaultProc, em *emulator, command []string, role string) string {
	t.Helper()
	policy := "app-" + role
	if err := v.api.Sys().PutPolicy(policy, fmt.Sprintf(`path "navercommerce/token/%s" { capabilities = ["read"] }`, role)); err != nil {
		t.Fatalf("writing policy %s: %v", policy, err)
	}
	created, err := v.api.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatalf("creating the app's Vault token: %v", err)
	}

	dir := mkdir(t, testDir(t, "app-"+role))
	// The app's whole environment: Vault's address and token, where to find the role and
	// the API, how long to run. PATH and HOME only besides.
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"VAULT_ADDR=" + v.addr,
		"VAULT_TOKEN=" + created.Auth.ClientToken,
		"NAVER_COMMERCE_ROLE=" + role,
		"NAVER_COMMERCE_API_URL=" + em.URL,
		fmt.Sprintf("APP_ITERATIONS=%d", appIterations),
		"APP_INTERVAL=1",
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	started := time.Now()
	err = cmd.Run()
	out := output.String()
	// The output is scanned with the test's logs for every secret any test knows: the
	// client secret, its salt, signatures, the tokens the tests read.
	logPath := filepath.Join(dir, "app.log")
	writeFile(t, logPath, out)
	hygiene(t).addLog(logPath)
	if err != nil {
		t.Fatalf("%s (role %s) failed after %s: %v\n%s", filepath.Base(command[1]), role, time.Since(started).Round(time.Second), err, out)
	}
	if m := accessTokenLike.FindString(out); m != "" {
		t.Errorf("the app's output holds something token-like (%d characters)", len(m))
	}
	t.Logf("%s on role %s: %d API calls in %s", filepath.Base(command[1]), role, appIterations, time.Since(started).Round(time.Second))
	return out
}

// runScript runs one of the project's install scripts and returns what it prints: a path.
func runScript(t *testing.T, root, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, script))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	path := strings.TrimSpace(stdout.String())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s printed %q: %v", script, path, err)
	}
	return path
}

// firstLine returns the first line of out that starts with prefix, or "".
func firstLine(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// TestAppsAgentExampleConfig runs examples/agent/agent.hcl itself, its relative paths and
// address pointed at the test's: Vault Agent accepts the recommended template_config and
// renders the token and the env file with it.
func TestAppsAgentExampleConfig(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/my-store", "type=SELLER", "account_id=ncp_example")

	example := filepath.Join(root, "examples", "agent")
	data, err := os.ReadFile(filepath.Join(example, "agent.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	config := string(data)
	for _, setting := range []string{"lease_renewal_threshold = 0.90", `static_secret_render_interval = "`} {
		if !strings.Contains(config, setting) {
			t.Errorf("examples/agent/agent.hcl does not recommend %s", setting)
		}
	}
	const exampleAddr = `address = "http://127.0.0.1:8200"`
	if !strings.Contains(config, exampleAddr) {
		t.Fatalf("examples/agent/agent.hcl has no %s to point at the test's Vault", exampleAddr)
	}
	dir := mkdir(t, filepath.Join(v.dir, "agent-example"))
	for _, name := range []string{"token.tpl", "token.env.tpl"} {
		tpl, err := os.ReadFile(filepath.Join(example, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), string(tpl))
	}
	config = strings.ReplaceAll(config, `"./`, `"`+dir+"/")
	config = strings.Replace(config, exampleAddr, fmt.Sprintf("address = %q", v.addr), 1)
	agent := runAgentConfig(t, v, dir, config)

	tok := agent.waitFile(t, filepath.Join(dir, "naver-token.txt"), 30*time.Second)
	noteSecret(tok, "an access token rendered by the agent")
	if !em.valid(t, tok) {
		t.Errorf("examples/agent/agent.hcl rendered a token the emulator does not accept")
	}
	env := agent.waitFile(t, filepath.Join(dir, "naver-token.env"), 30*time.Second)
	if !strings.HasPrefix(env, "NAVER_COMMERCE_ACCESS_TOKEN="+tok+"\n") {
		t.Errorf("examples/agent/agent.hcl rendered an env file without the token")
	}
	if log := agent.proc.tail(1000); strings.Contains(log, "[ERROR]") {
		t.Errorf("the agent logged errors:\n%s", strings.Join(errorLines(log), "\n"))
	}
}
