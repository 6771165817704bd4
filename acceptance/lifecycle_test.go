//go:build acceptance

package acceptance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRegistrationLifecycle registers the plugin the way an operator does (by SHA-256,
// under its version), mounts it, reloads it, and disables the mount while leases are live.
func TestRegistrationLifecycle(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	v := startDevVault(t)
	ver := v.env.pluginVersion

	// Vault checks the version the binary reports against the one it is registered under.
	if out, err := v.cliErr("plugin", "register", "-sha256="+v.pluginSHA, "-version=v99.0.0", "secret", pluginName); err == nil {
		t.Fatalf("registering under a version the plugin does not report succeeded: %s", out)
	} else if !strings.Contains(err.Error(), "did not match") {
		t.Fatalf("registering under a wrong version failed, but not with a version mismatch: %v", err)
	}
	// A registration with a SHA-256 that is not the binary's cannot be mounted.
	v.cli(t, "plugin", "register", "-sha256="+strings.Repeat("ab", 32), "-version="+ver, "secret", pluginName)
	if out, err := v.cliErr("secrets", "enable", "-path=wrongsha", "-plugin-version="+ver, pluginName); err == nil {
		t.Fatalf("mounting a plugin registered with a wrong SHA-256 succeeded: %s", out)
	} else if !strings.Contains(err.Error(), "checksums did not match") {
		t.Fatalf("mounting with a wrong SHA-256 failed for another reason: %v", err)
	}

	v.registerPlugin(t)
	var info struct {
		SHA256  string `json:"sha256"`
		Version string `json:"version"`
		Builtin bool   `json:"builtin"`
	}
	mustJSON(t, v.cli(t, "plugin", "info", "-format=json", "-version="+ver, "secret", pluginName), &info)
	if info.SHA256 != v.pluginSHA || info.Version != ver || info.Builtin {
		t.Fatalf("plugin info = %+v; want sha256 %s, version %s, external", info, v.pluginSHA, ver)
	}

	v.enable(t, "navercommerce")
	var mounts map[string]struct {
		Type                 string `json:"type"`
		PluginVersion        string `json:"plugin_version"`
		RunningPluginVersion string `json:"running_plugin_version"`
		RunningSHA256        string `json:"running_sha256"`
	}
	mustJSON(t, v.cli(t, "secrets", "list", "-format=json"), &mounts)
	m := mounts["navercommerce/"]
	if m.Type != pluginName || m.PluginVersion != ver || m.RunningPluginVersion != ver || m.RunningSHA256 != v.pluginSHA {
		t.Fatalf("mount navercommerce/ = %+v; want %s %s running with sha256 %s", m, pluginName, ver, v.pluginSHA)
	}

	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/x", "type=SELLER", "account_id=ncp_lifecycle")
	before := v.readToken(t, "navercommerce", "x")
	requestsBefore := em.stats(t).TokenRequests

	// Reload: the plugin process is replaced; the token cache in Vault storage survives it.
	reloadFrom := logSize(v.logPath())
	out := v.cli(t, v.env.server.PluginReloadArgs(pluginName)...)
	if !strings.Contains(out, "Reloaded") {
		t.Fatalf("vault plugin reload said: %s", out)
	}
	after := v.readToken(t, "navercommerce", "x")
	if after.AccessToken != before.AccessToken {
		t.Errorf("after a reload the plugin served another token: the cached token was lost")
	}
	if n := em.stats(t).TokenRequests; n != requestsBefore {
		t.Errorf("after a reload the plugin asked Naver again (%d token requests, was %d)", n, requestsBefore)
	}
	if !em.valid(t, after.AccessToken) {
		t.Errorf("the token read after the reload is not valid at the emulator")
	}
	reloadLog := logSince(t, v.logPath(), reloadFrom)
	if !strings.Contains(reloadLog, "successfully reloaded plugin") {
		t.Errorf("Vault's log does not show the plugin being reloaded")
	}
	if errs := errorLines(reloadLog); len(errs) > 0 {
		t.Errorf("Vault logged errors during the reload:\n%s", strings.Join(errs, "\n"))
	}

	// Disable with live leases: every lease is revoked, and revocation never fails.
	requireLive(t, v, before.LeaseID, after.LeaseID)
	from := logSize(v.logPath())
	v.cli(t, "secrets", "disable", "navercommerce")
	requireRevokedCleanly(t, v, from, "disabling the mount", before.LeaseID, after.LeaseID)
	// The tokens themselves stay valid: Naver cannot revoke them and the plugin must not try.
	if !em.valid(t, after.AccessToken) {
		t.Errorf("the token stopped working when its lease was revoked")
	}

	// Enabled again, the mount starts empty.
	v.enable(t, "navercommerce")
	if s, err := v.api.Logical().Read("navercommerce/config"); err != nil || s != nil {
		t.Fatalf("a fresh mount has a config: %v %v", s, err)
	}

	// Moving a mount (vault secrets move) revokes its leases, and keeps config, roles and
	// the cached token: the moved mount serves the same token without asking Naver.
	v.configure(t, "navercommerce", em, "verify_connection=false")
	v.write(t, "navercommerce/roles/x", "type=SELLER", "account_id=ncp_lifecycle")
	em.reset(t)
	first := v.readToken(t, "navercommerce", "x")
	from = logSize(v.logPath())
	mig, err := v.api.Sys().StartRemount("navercommerce", "naver-moved")
	if err != nil {
		t.Fatalf("moving the mount: %v", err)
	}
	waitFor(t, 30*time.Second, 50*time.Millisecond, "the mount move", func() (bool, error) {
		st, err := v.api.Sys().RemountStatus(mig.MigrationID)
		if err != nil || st.MigrationInfo == nil {
			return false, err
		}
		if st.MigrationInfo.MigrationStatus == "failure" {
			t.Fatalf("moving the mount failed")
		}
		return st.MigrationInfo.MigrationStatus == "success", nil
	})
	requireRevokedCleanly(t, v, from, "moving the mount", first.LeaseID)
	moved := v.readToken(t, "naver-moved", "x")
	if moved.AccessToken != first.AccessToken || !em.valid(t, moved.AccessToken) {
		t.Errorf("after the move the plugin served another or an invalid token")
	}
	if n := em.stats(t).TokenRequests; n != 1 {
		t.Errorf("the moved mount asked Naver again: %d token requests, want 1", n)
	}
}

// requireLive asserts that Vault knows the leases.
func requireLive(t *testing.T, v *vaultProc, leaseIDs ...string) {
	t.Helper()
	for _, id := range leaseIDs {
		if _, err := v.api.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": id}); err != nil {
			t.Fatalf("lease %s is not live: %v", id, err)
		}
	}
}

// requireRevokedCleanly asserts that the leases are gone, that Vault's log (from offset on)
// shows each of them revoked, and that it has no errors and no irrevocable leases.
func requireRevokedCleanly(t *testing.T, v *vaultProc, offset int64, what string, leaseIDs ...string) {
	t.Helper()
	for _, id := range leaseIDs {
		if _, err := v.api.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": id}); err == nil {
			t.Errorf("lease %s survived %s", id, what)
		}
	}
	log := logSince(t, v.logPath(), offset)
	for _, id := range leaseIDs {
		if !strings.Contains(log, "revoked lease: lease_id="+id) {
			t.Errorf("Vault's log does not show lease %s being revoked when %s", id, what)
		}
	}
	if errs := errorLines(log); len(errs) > 0 {
		t.Errorf("Vault logged errors when %s:\n%s", what, strings.Join(errs, "\n"))
	}
	for _, bad := range []string{"irrevocable", "failed to revoke"} {
		if strings.Contains(strings.ToLower(log), bad) {
			t.Errorf("Vault's log mentions %q when %s", bad, what)
		}
	}
}

func mustJSON(t *testing.T, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("parsing %q: %v", data, err)
	}
}
