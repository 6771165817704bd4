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

// The apps' tokens live appTokenLifetime. The plugin hands out a cached token while it has
// 10 s or more left (its 30-minute window is fixed, so these tokens are always inside it), and
// the emulator mints a new token once the current one has less than appReuse left. An app
// reads again at 90% of the token's remaining life, with 3 s left: the plugin then asks the
// emulator and the app gets a new token before the old one expires.
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
// and the emulator, each on a leased role, a lease-free role and one seller of a many-seller
// role (an account ID with URL and shell metacharacters), all six at once: the app gets a
// token with an application token that may read only its role's (or seller's) token, the
// protected API
// answers 200 with it at every call, the app reads again when the lease (or, lease-free,
// expires_in) says so and before the token expires (no 401 ever forces it), and neither the
// client secret nor any token is in the app's output, which names the role and the account
// of every read. The app's environment is built from nothing: Vault's address and token,
// the role (and account), the API URL, PATH and HOME.
func TestApps(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	// Install first: on a fresh machine apt-get and npm take a while.
	python := runScript(t, root, "scripts/install-python-hvac.sh")
	nodeDir := runScript(t, root, "scripts/install-node-vault.sh")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: %v", err)
	}

	em := startEmulator(t, emulatorOpts{TokenLifetime: appTokenLifetime, ReuseThreshold: appReuse})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	// After every app has run: no needless request reached Naver.
	t.Cleanup(func() {
		if st := em.stats(t); len(st.Violations) > 0 {
			t.Errorf("the emulator recorded violations: %v", st.Violations)
		}
	})

	var runs []*appRun
	for _, app := range []struct {
		name    string
		command []string
	}{
		{"python", []string{python, filepath.Join(root, "examples", "python", "app.py")}},
		{"node", []string{node, filepath.Join(nodeDir, "app.js")}},
	} {
		for _, kind := range []appRoleKind{leasedRole, leaseFreeRole, manySellerRole} {
			runs = append(runs, startApp(t, v, em, app.name, app.command, kind))
		}
	}
	for _, r := range runs {
		t.Run(r.role, r.check)
	}
}

// appRoleKind is the kind of role an app reads.
type appRoleKind int

const (
	leasedRole appRoleKind = iota
	leaseFreeRole
	manySellerRole // leased; the app reads one seller, token/<role>/<account_id>
)

// appRun is one example app running on one role.
type appRun struct {
	em            *emulator
	role, account string
	kind          appRoleKind
	dir           string
	started       time.Time
	output        bytes.Buffer
	done          chan error
}

// startApp creates a role (one account per run, so runs do not share a cached token) and a
// Vault token that may read only that role's token (or seller's), and starts the app on it.
func startApp(t *testing.T, v *vaultProc, em *emulator, name string, command []string, kind appRoleKind) *appRun {
	t.Helper()
	r := &appRun{em: em, kind: kind, done: make(chan error, 1)}
	tokenPath := ""
	switch kind {
	case leasedRole: // leased is the default: no lease field
		r.role = name + "-leased"
		r.account = "ncp_app_" + name + "_leased"
		v.write(t, "navercommerce/roles/"+r.role, "type=SELLER", "account_id="+r.account)
		tokenPath = r.role
	case leaseFreeRole:
		r.role = name + "-lease-free"
		r.account = "ncp_app_" + name + "_lease_free"
		v.write(t, "navercommerce/roles/"+r.role, "type=SELLER", "account_id="+r.account, "lease=false")
		tokenPath = r.role
	case manySellerRole:
		r.role = name + "-sellers"
		r.account = "ncp_app_" + name + sellerAccountID[len("ncp"):]
		v.write(t, "navercommerce/roles/"+r.role, "type=SELLER", "allowed_account_ids=ncp_app_"+name+"_*")
		tokenPath = r.role + "/" + r.account
	}

	policy := "app-" + r.role
	if err := v.api.Sys().PutPolicy(policy, fmt.Sprintf(`path %q { capabilities = ["read"] }`, "navercommerce/token/"+tokenPath)); err != nil {
		t.Fatalf("writing policy %s: %v", policy, err)
	}
	created, err := v.api.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatalf("creating the app's Vault token: %v", err)
	}

	r.dir = mkdir(t, testDir(t, "app-"+r.role))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + r.dir,
		"VAULT_ADDR=" + v.addr,
		"VAULT_TOKEN=" + created.Auth.ClientToken,
		"NAVER_COMMERCE_ROLE=" + r.role,
		"NAVER_COMMERCE_API_URL=" + em.URL,
		"PYTHONDONTWRITEBYTECODE=1", // no __pycache__ in examples/python
	}
	if kind == manySellerRole {
		cmd.Env = append(cmd.Env, "NAVER_COMMERCE_ACCOUNT_ID="+r.account)
	}
	cmd.Env = append(cmd.Env,
		fmt.Sprintf("APP_ITERATIONS=%d", appIterations),
		"APP_INTERVAL=1",
	)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = &r.output, &r.output
	r.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", strings.Join(command, " "), err)
	}
	go func() { r.done <- cmd.Wait() }()
	return r
}

// check waits for the app to finish and checks what it did.
func (r *appRun) check(t *testing.T) {
	err := <-r.done
	out := r.output.String()
	// The output is scanned with the test's logs for every secret any test knows: the
	// client secret, its salt, signatures, the tokens the tests read.
	logPath := filepath.Join(r.dir, "app.log")
	writeFile(t, logPath, out)
	hygiene(t).addLog(logPath)
	if err != nil {
		t.Fatalf("the app failed after %s: %v\n%s", time.Since(r.started).Round(time.Second), err, out)
	}
	t.Logf("%d API calls in %s", appIterations, time.Since(r.started).Round(time.Second))

	if m := accessTokenLike.FindString(out); m != "" {
		t.Errorf("the app's output holds something token-like (%d characters)", len(m))
	}
	if n := strings.Count(out, "API 200: account "+r.account+" (SELLER)"); n != appIterations {
		t.Errorf("%d of %d API calls answered 200 for %s:\n%s", n, appIterations, r.account, out)
	}
	wantKind := "lease "
	if r.kind == leaseFreeRole {
		wantKind = "no lease"
	}
	read := "read token of role " + r.role + ", account " + r.account
	if first := firstLine(out, read+" (first read): "); !strings.Contains(first, wantKind) {
		t.Errorf("the first read says %q, want %q", first, wantKind)
	}
	if n := strings.Count(out, read+" (due)"); n < 1 {
		t.Errorf("the app never read again when its token was due:\n%s", out)
	}
	if strings.Contains(out, "refused") {
		t.Errorf("a token was refused by the API: the app read again too late:\n%s", out)
	}
	if n := r.em.stats(t).Keys[r.em.key("SELLER", r.account)].Requests; n < 2 {
		t.Errorf("the emulator counted %d token requests for %s, want a new token within the run", n, r.account)
	}
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
