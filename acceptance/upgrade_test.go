//go:build acceptance

package acceptance

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpgradeKeepsCachedTokens follows the README's upgrade steps: register a new version,
// tune the mount to it, reload. The new plugin process serves the token the old one cached
// (it is in Vault storage), so an upgrade costs no request to Naver.
func TestUpgradeKeepsCachedTokens(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_upgrade")
	before := v.readToken(t, "navercommerce", "store")
	requests := em.stats(t).TokenRequests

	// Build the same code as another version, as a release would be.
	const newVersion = "v99.0.0"
	newBin := filepath.Join(v.pluginDir, pluginName+"-"+newVersion)
	build := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-X github.com/navercommerce/vault-plugin-secrets-navercommerce.Version="+newVersion,
		"-o", newBin, "./cmd/"+pluginName)
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", newVersion, err, out)
	}
	raw, err := os.ReadFile(newBin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)

	v.cli(t, "plugin", "register", "-sha256="+hex.EncodeToString(sum[:]), "-version="+newVersion,
		"-command="+filepath.Base(newBin), "secret", pluginName)
	v.cli(t, "secrets", "tune", "-plugin-version="+newVersion, "navercommerce/")
	v.cli(t, v.env.server.PluginReloadArgs(pluginName)...)

	if out := v.cli(t, "read", "-field=version", "navercommerce/info"); strings.TrimSpace(out) != newVersion {
		t.Fatalf("navercommerce/info says %q after the upgrade, want %s", out, newVersion)
	}
	after := v.readToken(t, "navercommerce", "store")
	if after.AccessToken != before.AccessToken {
		t.Error("the upgraded plugin did not serve the cached token")
	}
	if n := em.stats(t).TokenRequests; n != requests {
		t.Errorf("the upgrade cost %d token request(s)", n-requests)
	}
	if got := strings.TrimSpace(v.cli(t, "read", "-field=type", "navercommerce/roles/store")); got != "SELLER" {
		t.Errorf("role after the upgrade: type %q", got)
	}
}
