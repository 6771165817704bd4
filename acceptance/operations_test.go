//go:build acceptance

package acceptance

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
)

// The recipes of README's "Operations" section are the scripts in examples/operations/,
// which the READMEs include verbatim (readme_test.go checks that). These tests run each
// script as it is written, with bash, against a real Vault and the emulator, the way an
// operator would: VAULT_ADDR, VAULT_TOKEN and the script's own variables in the
// environment, and the `vault` on PATH being the server's.

// recipe runs examples/operations/<script> with args and env against v, and returns what
// it printed (standard output and error together).
func recipe(t *testing.T, v *vaultProc, script string, env []string, args ...string) (string, error) {
	t.Helper()
	if v.env.server == harness.ServerOpenBao {
		// The recipes are written for the `vault` CLI; on OpenBao they read the same with `bao`.
		t.Skip("the Operations recipes use the vault CLI; OpenBao's is bao (README \"OpenBao\")")
	}
	path, err := filepath.Abs(filepath.Join("..", "examples", "operations", script))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{path}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = childEnv(append([]string{
		"VAULT_ADDR=" + v.addr, "VAULT_TOKEN=" + v.token, "HOME=" + cmd.Dir,
		"PATH=" + filepath.Dir(v.env.vaultBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}, env...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s %s:\n%s", script, strings.Join(args, " "), out)
	return string(out), err
}

// mustRecipe is recipe failing the test when the script fails.
func mustRecipe(t *testing.T, v *vaultProc, script string, env []string, args ...string) string {
	t.Helper()
	out, err := recipe(t, v, script, env, args...)
	if err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
	return out
}

// adminToken is a token of examples/policy-admin.hcl, the policy the recipes are written
// for (all but move-mount.sh, which needs sys/remount).
func adminToken(t *testing.T, v *vaultProc) string {
	t.Helper()
	policy, err := filepath.Abs(filepath.Join("..", "examples", "policy-admin.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	v.cli(t, "policy", "write", "navercommerce-admin", policy)
	return "VAULT_TOKEN=" + strings.TrimSpace(v.cli(t, "token", "create", "-policy=navercommerce-admin", "-field=token"))
}

// requireVersionFlag skips the test when the plugin binary cannot report its version
// (`-version`), which the install and upgrade recipes ask it for.
func requireVersionFlag(t *testing.T, bin, want string) {
	t.Helper()
	out, err := exec.Command(bin, "-version").Output()
	if err != nil {
		t.Skipf("%s -version: %v: the recipes need a plugin binary that reports its version", bin, err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("%s -version printed %q, want %q", bin, got, want)
	}
}

// buildPluginVersion builds the plugin as version, as a release of it would be.
func buildPluginVersion(t *testing.T, version string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), pluginName)
	build := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-X github.com/navercommerce/vault-plugin-secrets-navercommerce.Version="+version,
		"-o", bin, "./cmd/"+pluginName)
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", version, err, out)
	}
	return bin
}

// TestOperationsInstallUpgradeRollback: install.sh registers and mounts the plugin under
// the version it reports; upgrade.sh puts a new version beside it and switches the mount,
// also when run a second time while that version runs; rollback.sh goes back. No step asks
// Naver anything.
func TestOperationsInstallUpgradeRollback(t *testing.T) {
	t.Parallel()
	e := requireEnv(t)
	requireVersionFlag(t, e.pluginBin, e.pluginVersion)
	const newVersion = "v99.1.0"
	newBin := buildPluginVersion(t, newVersion)
	requireVersionFlag(t, newBin, newVersion)

	em := startEmulator(t, emulatorOpts{})
	v := startDevVault(t)
	pluginDir := "PLUGIN_DIR=" + v.pluginDir
	admin := adminToken(t, v)

	out := mustRecipe(t, v, "install.sh", []string{"NEW_BIN=" + e.pluginBin, pluginDir, admin})
	if !strings.Contains(out, e.pluginVersion) {
		t.Errorf("install.sh did not show the running version %s", e.pluginVersion)
	}
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_ops_upgrade")
	before := v.readToken(t, "navercommerce", "store")
	requests := em.stats(t).TokenRequests

	assertRunning := func(version string) {
		t.Helper()
		if got := strings.TrimSpace(v.cli(t, "read", "-field=version", "navercommerce/info")); got != version {
			t.Fatalf("navercommerce/info says %s, want %s", got, version)
		}
		if tok := v.readToken(t, "navercommerce", "store"); tok.AccessToken != before.AccessToken {
			t.Errorf("running %s, the mount did not serve the cached token", version)
		}
		if n := em.stats(t).TokenRequests; n != requests {
			t.Errorf("running %s: %d token request(s) since the install, want none", version, n-requests)
		}
	}

	for run := 1; run <= 2; run++ {
		out = mustRecipe(t, v, "upgrade.sh", []string{"NEW_BIN=" + newBin, pluginDir, admin})
		if want := "TO_VERSION=" + e.pluginVersion; run == 1 && !strings.Contains(out, want) {
			t.Errorf("upgrade.sh did not say how to roll back (%s)", want)
		}
		assertRunning(newVersion)
	}
	if _, err := os.Stat(filepath.Join(v.pluginDir, pluginName+"-"+newVersion)); err != nil {
		t.Errorf("the new version's file: %v", err)
	}

	mustRecipe(t, v, "rollback.sh", []string{"TO_VERSION=" + e.pluginVersion, admin})
	assertRunning(e.pluginVersion)

	if _, err := recipe(t, v, "rollback.sh", []string{"TO_VERSION=v0.0.1-never-registered", admin}); err == nil {
		t.Error("rollback.sh to a version never registered succeeded")
	}
	assertRunning(e.pluginVersion)
}

// supervisedAgent runs Vault Agent the way a service manager does (started again whenever
// it exits), and puts a `systemctl` on PATH whose "restart vault-agent" stops it and waits
// for the next one, as systemd does for a unit with Restart=always.
type supervisedAgent struct {
	pidFile string
	binDir  string // holds the systemctl
	proc    *proc
}

func startSupervisedAgent(t *testing.T, v *vaultProc, templates ...agentTemplate) *supervisedAgent {
	t.Helper()
	dir := mkdir(t, filepath.Join(v.dir, "agent-"+randomHex(3)))
	opts := harness.AgentOptions{Dir: dir, VaultAddr: v.addr, Templates: templates}
	config := filepath.Join(dir, "agent.hcl")
	writeFile(t, config, harness.AgentConfig(opts))
	writeFile(t, filepath.Join(dir, "vault-token"), v.token)
	logPath := filepath.Join(dir, "agent.log")
	v.h.addLog(logPath)
	p := startProc(t, "vault agent (supervised)", logPath, childEnv("HOME="+dir), "bash", "-c",
		`while :; do "$0" agent -config="$1" -log-level=debug; sleep 0.2; done`, v.env.vaultBin, config)
	cleanupProc(t, p)

	a := &supervisedAgent{pidFile: filepath.Join(dir, "agent.pid"), binDir: mkdir(t, filepath.Join(dir, "bin")), proc: p}
	systemctl := `#!/usr/bin/env bash
set -u
[ "$*" = "restart vault-agent" ] || { echo "test systemctl: only 'restart vault-agent', not: $*" >&2; exit 1; }
pidfile=` + strconv.Quote(a.pidFile) + `
old=$(cat "$pidfile")
kill -TERM "$old"
for _ in $(seq 600); do
  new=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null; then exit 0; fi
  sleep 0.05
done
echo "test systemctl: vault-agent did not start again" >&2
exit 1
`
	if err := os.WriteFile(filepath.Join(a.binDir, "systemctl"), []byte(systemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	return a
}

// waitRendered polls path until it holds a value other than the ones in not.
func waitRendered(t *testing.T, path string, timeout time.Duration, not ...string) string {
	t.Helper()
	var got string
	waitFor(t, timeout, 50*time.Millisecond, "a token rendered into "+filepath.Base(path), func() (bool, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return false, err
		}
		if got = strings.TrimSpace(string(data)); got == "" {
			return false, errors.New("empty file")
		}
		for _, n := range not {
			if got == n {
				return false, errors.New("still the old token")
			}
		}
		return true, nil
	})
	noteSecret(got, "an access token rendered by the agent")
	return got
}

// reissueSecret re-issues em's client secret, as the API center does: the old secret and
// every token made with it die at once. The new secret is returned in a file.
func reissueSecret(t *testing.T, em *emulator) (secretFile string) {
	t.Helper()
	secret := newClientSecret()
	if err := em.he.AdminJSON(http.MethodPost, "client-secret", map[string]string{"client_id": em.ClientID, "client_secret": secret}, nil); err != nil {
		t.Fatal(err)
	}
	secretFile = filepath.Join(t.TempDir(), "new-secret")
	writeFile(t, secretFile, secret+"\n")
	return secretFile
}

// TestOperationsRotateClientSecret: after the secret is re-issued, rotate-client-secret.sh
// stores it and restarts the agent, which renders a token made with the new secret within
// seconds; direct reads get a working token at once.
func TestOperationsRotateClientSecret(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.enableAudit(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_ops_rotate")
	rendered := filepath.Join(mkdir(t, testDir(t, "rendered")), "token.txt")
	agent := startSupervisedAgent(t, v, agentTemplate{Contents: `{{ with secret "navercommerce/token/store" }}{{ .Data.access_token }}{{ end }}`, Destination: rendered})
	old := waitRendered(t, rendered, 30*time.Second)

	reissued := time.Now()
	secretFile := reissueSecret(t, em)
	if status, _ := em.callAPI(t, old); status != http.StatusUnauthorized {
		t.Fatalf("the API answered %d to a token of the old secret, want 401", status)
	}
	admin := adminToken(t, v)
	out := mustRecipe(t, v, "rotate-client-secret.sh", []string{
		"NEW_SECRET_FILE=" + secretFile, "AGENT_SERVICE=vault-agent", admin,
		"PATH=" + agent.binDir + string(os.PathListSeparator) + filepath.Dir(v.env.vaultBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
	})
	fresh := waitRendered(t, rendered, 30*time.Second, old)
	took := time.Since(reissued)
	t.Logf("the agent rendered a working token %s after the re-issue", took.Round(100*time.Millisecond))
	if status, _ := em.callAPI(t, fresh); status != http.StatusOK {
		t.Fatalf("the API answered %d to the token rendered after the rotation", status)
	}
	if took > 30*time.Second {
		t.Errorf("the agent served a dead token for %s after the re-issue", took.Round(time.Second))
	}
	if _, err := os.Stat(secretFile); !os.IsNotExist(err) {
		t.Errorf("the new secret's file is still there (%v)", err)
	}
	if tok := v.readToken(t, "navercommerce", "store"); tok.AccessToken != fresh {
		t.Errorf("a direct read after the rotation got another token than the agent's")
	}
	if !strings.Contains(out, "SELLER\tncp_ops_rotate\tcached=true") || strings.Contains(out, "FAILING") {
		t.Errorf("the status lines of rotate-client-secret.sh do not show the key cached and healthy")
	}
	// A second run with a secret Naver does not know is refused, and the good one stays.
	bad := filepath.Join(t.TempDir(), "wrong-secret")
	writeFile(t, bad, newClientSecret())
	if out, err := recipe(t, v, "rotate-client-secret.sh", []string{"NEW_SECRET_FILE=" + bad, admin}); err == nil || !strings.Contains(out, "verify_connection") {
		t.Errorf("rotate-client-secret.sh with a wrong secret: %v", err)
	}
	v.write(t, "navercommerce/roles/other", "type=SELLER", "account_id=ncp_ops_rotate_other")
	if tok := v.readToken(t, "navercommerce", "other"); !em.valid(t, tok.AccessToken) {
		t.Error("after a refused rotation, the stored secret no longer works")
	}
}

// TestOperationsAgentKeepsTokenUntilRestart: what the rotation recipe says of Vault Agent.
// After the secret was rotated, revoking the mount's leases and SIGHUP leave the agent's
// rendered token (dead at Naver) in place; restarting the agent renders a working one.
func TestOperationsAgentKeepsTokenUntilRestart(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_ops_agent")
	rendered := filepath.Join(mkdir(t, testDir(t, "rendered")), "token.txt")
	agent := startSupervisedAgent(t, v, agentTemplate{Contents: `{{ with secret "navercommerce/token/store" }}{{ .Data.access_token }}{{ end }}`, Destination: rendered})
	old := waitRendered(t, rendered, 30*time.Second)

	mustRecipe(t, v, "rotate-client-secret.sh", []string{"NEW_SECRET_FILE=" + reissueSecret(t, em)})
	stillOld := func(after string) {
		t.Helper()
		time.Sleep(5 * time.Second)
		if got := waitRendered(t, rendered, time.Second); got != old {
			t.Fatalf("the agent rendered a new token after %s", after)
		}
	}
	v.cli(t, "lease", "revoke", "-prefix", "navercommerce/token/")
	stillOld("vault lease revoke -prefix navercommerce/token/")

	pid, err := os.ReadFile(agent.pidFile)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(n, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	stillOld("SIGHUP")
	if status, _ := em.callAPI(t, old); status != http.StatusUnauthorized {
		t.Fatalf("the API answered %d to the old token, want 401", status)
	}

	restart := exec.Command(filepath.Join(agent.binDir, "systemctl"), "restart", "vault-agent")
	if out, err := restart.CombinedOutput(); err != nil {
		t.Fatalf("restarting the agent: %v\n%s", err, out)
	}
	fresh := waitRendered(t, rendered, 30*time.Second, old)
	if status, _ := em.callAPI(t, fresh); status != http.StatusOK {
		t.Fatalf("the API answered %d to the token rendered after the restart", status)
	}
}

// TestOperationsDropToken: drop-token.sh refuses to drop a token Naver still accepts (and
// asks Naver for nothing), and drops one Naver refuses with 401; the next read gets a new
// working token with one request.
func TestOperationsDropToken(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_ops_drop")
	old := v.readToken(t, "navercommerce", "store")
	env := []string{"ROLE=store", "NAVER_COMMERCE_API_URL=" + em.URL, adminToken(t, v)}
	key := em.key("SELLER", "ncp_ops_drop")

	out, err := recipe(t, v, "drop-token.sh", env)
	if err == nil || !strings.Contains(out, "not dropping") {
		t.Fatalf("drop-token.sh dropped a token Naver accepts (err %v)", err)
	}
	if n := em.stats(t).Keys[key].Requests; n != 1 {
		t.Errorf("%d token requests after a refused drop, want the first only", n)
	}
	if tok := v.readToken(t, "navercommerce", "store"); tok.AccessToken != old.AccessToken {
		t.Error("the token Naver accepts was replaced")
	}

	// Naver forgets every token (as when a seller re-authorises the application): the
	// cached one is refused with 401.
	em.reset(t)
	out = mustRecipe(t, v, "drop-token.sh", env)
	if !strings.Contains(out, "dropped: role store, SELLER account ncp_ops_drop: cached=false") {
		t.Errorf("drop-token.sh did not show the token dropped")
	}
	fresh := v.readToken(t, "navercommerce", "store")
	if status, _ := em.callAPI(t, fresh.AccessToken); fresh.AccessToken == old.AccessToken || status != http.StatusOK {
		t.Errorf("after the drop, the read got the old token again or one the API refuses (%d)", status)
	}
	if n := em.stats(t).Keys[key].Requests; n != 1 {
		t.Errorf("%d token requests since Naver forgot the tokens, want 1", n)
	}
}

// TestOperationsMoveMountAndRole: move-role.sh renames a role (copy, then retire) while the
// token stays shared, refusing to retire a role into one with other settings;
// move-mount.sh moves config, roles and the cached token to a new path. Neither asks Naver
// anything.
func TestOperationsMoveMountAndRole(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_ops_move", "ttl=2h", "lease=false")
	before := v.readToken(t, "navercommerce", "store")
	requests := em.stats(t).TokenRequests

	env := []string{adminToken(t, v)}
	mustRecipe(t, v, "move-role.sh", env, "copy", "store", "shop-a")
	var role struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(v.cli(t, "read", "-format=json", "navercommerce/roles/shop-a")), &role); err != nil {
		t.Fatal(err)
	}
	if role.Data["type"] != "SELLER" || role.Data["account_id"] != "ncp_ops_move" || role.Data["lease"] != false || atoi(t, role.Data["ttl"]) != 7200 {
		t.Errorf("the copied role is %v", role.Data)
	}
	if tok := v.readToken(t, "navercommerce", "shop-a"); tok.AccessToken != before.AccessToken || tok.LeaseID != "" {
		t.Error("the copied role did not share the cached token, lease-free")
	}
	v.write(t, "navercommerce/roles/other", "type=SELLER", "account_id=ncp_ops_other")
	if _, err := recipe(t, v, "move-role.sh", env, "retire", "store", "other"); err == nil {
		t.Error("move-role.sh retired a role into one with other settings")
	}
	mustRecipe(t, v, "move-role.sh", env, "retire", "store", "shop-a")
	if _, err := v.readTokenErr("navercommerce", "store"); err == nil {
		t.Error("the retired role still serves tokens")
	}
	if tok := v.readToken(t, "navercommerce", "shop-a"); tok.AccessToken != before.AccessToken {
		t.Error("retiring the old role dropped the shared token")
	}
	out := mustRecipe(t, v, "move-mount.sh", []string{"FROM=navercommerce", "TO=naver-shop-a"})
	if !strings.Contains(out, "true cached_keys=") {
		t.Errorf("move-mount.sh did not show the moved mount configured")
	}
	if tok := v.readToken(t, "naver-shop-a", "shop-a"); tok.AccessToken != before.AccessToken {
		t.Error("the moved mount did not serve the cached token")
	}
	if _, err := v.readTokenErr("navercommerce", "shop-a"); err == nil {
		t.Error("the old path still serves tokens")
	}

	if n := em.stats(t).TokenRequests - requests; n != 0 {
		t.Errorf("%d token requests for the moves, want none", n)
	}
}

// TestOperationsCheckStatus: check-status.sh exits 0 while tokens are healthy, 1 while
// renewals fail but a token is served, 2 when a key has no token and its requests fail.
func TestOperationsCheckStatus(t *testing.T) {
	t.Parallel()
	// Tokens of 30 minutes and 5 seconds: in Naver's renewal window 5 seconds after issue.
	em := startEmulator(t, emulatorOpts{TokenLifetime: 30*time.Minute + 5*time.Second, ExtraArgs: []string{"-penalty=false"}})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em, "renewal_spread=0") // renewed as soon as the window opens
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_ops_check")
	v.readToken(t, "navercommerce", "store")
	policy, err := filepath.Abs(filepath.Join("..", "examples", "policy-operator.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	v.cli(t, "policy", "write", "navercommerce-operator", policy)
	operator := []string{"VAULT_TOKEN=" + strings.TrimSpace(v.cli(t, "token", "create", "-policy=navercommerce-operator", "-field=token"))}
	check := func(wantExit int, want ...string) {
		t.Helper()
		out, err := recipe(t, v, "check-status.sh", operator)
		exit := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			exit = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if exit != wantExit {
			t.Errorf("check-status.sh exited %d, want %d", exit, wantExit)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("check-status.sh output lacks %q", w)
			}
		}
	}
	check(0, "OK SELLER ncp_ops_check (roles: store): expires ")

	// Naver fails from now on. The token is in its renewal window, so a read is served at
	// once and the renewal behind it fails (a key asks at most every 10 s: read until it
	// has).
	em.fault(t, map[string]any{"status": 503, "code": "GW.SERVICE_UNAVAILABLE", "count": 1000})
	waitFor(t, 40*time.Second, time.Second, "a failed renewal in status", func() (bool, error) {
		v.readToken(t, "navercommerce", "store")
		var st struct {
			Data struct {
				ConsecutiveFailures int `json:"consecutive_failures"`
			} `json:"data"`
		}
		err := json.Unmarshal([]byte(v.cli(t, "read", "-format=json", "navercommerce/status/store")), &st)
		return st.Data.ConsecutiveFailures > 0, err
	})
	check(1, "WARNING SELLER ncp_ops_check", "HTTP 503 GW.SERVICE_UNAVAILABLE trace ")

	// A role read for the first time while Naver fails has no token at all.
	v.write(t, "navercommerce/roles/cold", "type=SELLER", "account_id=ncp_ops_cold")
	if _, err := v.readTokenErr("navercommerce", "cold"); err == nil {
		t.Fatal("a token read succeeded while Naver fails every request")
	}
	check(2, "CRITICAL SELLER ncp_ops_cold (roles: cold): no token", "WARNING SELLER ncp_ops_check")
}
