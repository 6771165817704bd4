//go:build acceptance

package acceptance

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
)

// TestDemoIsARecipe runs `scripts/demo.sh start` as `make demo` does, in a copy of the
// repository's scripts (so that it neither sees nor stops a demo the developer runs), then
// runs the commands it prints for the Python and Node.js examples exactly as printed. The
// demo's emulator knows the demo's sellers only: a typo in an account_id is refused with the
// hint that fits it.
func TestDemoIsARecipe(t *testing.T) {
	e := requireEnv(t)
	if e.server == harness.ServerOpenBao {
		// make demo installs and runs the pinned Vault (its `vault` CLI, its agent flags);
		// the OpenBao commands are in README "OpenBao" and the other tests.
		t.Skip("make demo is a recipe for the pinned Vault, not for OpenBao")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
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
	vaultPort, err := harness.FreePortPair()
	if err != nil {
		t.Fatal(err)
	}
	emulatorPort, err := harness.FreePortPair()
	if err != nil {
		t.Fatal(err)
	}
	demo := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(root, "scripts", "demo.sh"), args...)
		cmd.Dir = root
		cmd.Env = childEnv("VAULT_BIN="+e.vaultBin, "PLUGIN_VERSION="+e.pluginVersion, "PLUGIN_BIN="+e.pluginBin,
			"EMULATOR_BIN="+e.emulatorBin, "DEMO_VAULT_PORT="+strconv.Itoa(vaultPort), "DEMO_EMULATOR_PORT="+strconv.Itoa(emulatorPort))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := demo("stop"); err != nil {
			t.Errorf("demo.sh stop: %v\n%s", err, out)
		}
	})
	out, err := demo("start")
	if err != nil {
		t.Fatalf("demo.sh start: %v\n%s", err, out)
	}

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
		cmd.Dir = root
		cmd.Env = childEnv()
		got, err := cmd.CombinedOutput()
		if err != nil || strings.Count(string(got), "API 200: account ncp_demo_seller (SELLER)") != 3 {
			t.Errorf("the %s example as the demo prints it:\n$ %s\n%v\n%s", name, line, err, got)
		}
	}

	// A typo in a seller's account ID: refused by the demo's emulator, with the fitting hint.
	client, err := harness.NewClient("http://127.0.0.1:"+strconv.Itoa(vaultPort), "demo-root-token")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Logical().Write("navercommerce/roles/typo", map[string]any{"type": "SELLER", "account_id": "ncp_demo_seler"}); err != nil {
		t.Fatal(err)
	}
	_, err = client.Logical().Read("navercommerce/token/typo")
	requireStatus(t, err, 400, `account_id "ncp_demo_seler"`, "check the role's account_id")
}
