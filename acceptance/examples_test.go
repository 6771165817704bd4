//go:build acceptance

package acceptance

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// repoRoot is the module root: the examples live there.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Dir(filepath.Dir(file))
}

// TestExamples runs what examples/ ships against a real Vault: the application policy
// allows exactly the token read, the Vault Agent templates render a working token and env
// file, and the Go client reads a token and uses it.
func TestExamples(t *testing.T) {
	root := repoRoot(t)
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/my-store", "type=SELLER", "account_id=ncp_example")
	v.write(t, "navercommerce/roles/my-app", "type=SELF")

	t.Run("policy", func(t *testing.T) {
		v.cli(t, "policy", "write", "my-store-app", filepath.Join(root, "examples", "policy.hcl"))
		appToken := strings.TrimSpace(v.cli(t, "token", "create", "-policy=my-store-app", "-field=token"))
		app := *v // the same server, seen by the application
		app.token = appToken
		if out, err := app.cliErr("read", "-field=access_token", "navercommerce/token/my-store"); err != nil {
			t.Fatalf("the policy does not allow reading navercommerce/token/my-store: %v", err)
		} else {
			noteSecret(strings.TrimSpace(out), "an access token")
			if !em.valid(t, strings.TrimSpace(out)) {
				t.Errorf("the application got a token the emulator does not accept")
			}
		}
		for _, args := range [][]string{
			{"read", "navercommerce/config"},
			{"read", "navercommerce/token/my-app"},
			{"read", "navercommerce/roles/my-store"},
			{"list", "navercommerce/roles"},
			{"write", "navercommerce/roles/my-store", "type=SELF"},
			{"write", "navercommerce/config", "client_id=x"},
		} {
			if out, err := app.cliErr(args...); err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("with the example policy, vault %s: want permission denied, got %v %s", strings.Join(args, " "), err, out)
			}
		}
	})

	t.Run("agent templates", func(t *testing.T) {
		dir := mkdir(t, testDir(t, "rendered"))
		tokenFile, envFile := filepath.Join(dir, "naver-token.txt"), filepath.Join(dir, "naver-token.env")
		agent := startAgent(t, v,
			agentTemplate{Source: filepath.Join(root, "examples", "agent", "token.tpl"), Destination: tokenFile},
			agentTemplate{Source: filepath.Join(root, "examples", "agent", "token.env.tpl"), Destination: envFile},
		)
		tok := agent.waitFile(t, tokenFile, 30*time.Second)
		noteSecret(tok, "an access token")
		if !em.valid(t, tok) {
			t.Errorf("examples/agent/token.tpl rendered a token the emulator does not accept")
		}
		env := agent.waitFile(t, envFile, 30*time.Second)
		want := "NAVER_COMMERCE_ACCESS_TOKEN=" + tok + "\nNAVER_COMMERCE_TOKEN_EXPIRES_AT="
		if !strings.HasPrefix(env, want) {
			t.Errorf("examples/agent/token.env.tpl rendered %q", strings.ReplaceAll(env, tok, "<token>"))
		}
		if exp := env[strings.LastIndex(env, "=")+1:]; !strings.HasSuffix(exp, "Z") {
			t.Errorf("NAVER_COMMERCE_TOKEN_EXPIRES_AT=%s is not an RFC 3339 UTC time", exp)
		} else if at, err := time.Parse(time.RFC3339, exp); err != nil || time.Until(at) < 2*time.Hour {
			t.Errorf("NAVER_COMMERCE_TOKEN_EXPIRES_AT=%s: %v", exp, err)
		}
		// The agent example itself parses as an agent config with those template files.
		if _, err := os.Stat(filepath.Join(root, "examples", "agent", "agent.hcl")); err != nil {
			t.Errorf("examples/agent/agent.hcl: %v", err)
		}
	})

	t.Run("go client", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "go-client")
		build := exec.Command("go", "build", "-o", bin, "./examples/go-client")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building examples/go-client: %v\n%s", err, out)
		}
		run := exec.Command(bin, "-role", "my-store", "-api", em.URL, "-rounds", "1")
		run.Env = childEnv("VAULT_ADDR="+v.addr, "VAULT_TOKEN="+v.token)
		out, err := run.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "works: account ncp_example") {
			t.Fatalf("examples/go-client: %v\n%s", err, out)
		}
	})
}
