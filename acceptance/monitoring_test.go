//go:build acceptance

package acceptance

import (
	"path/filepath"
	"strings"
	"testing"
)

// Monitoring tells the truth (issue 26, items 1 and 2), through a real Vault and the
// recipe as written: a seller Naver refuses as not authorised is a WARNING naming the
// account and what clears it, never an outage; a drop clears it; right after a plugin
// reload no key is OK for want of knowing which roles name it (the SELF key whose token
// came from the config's verification included).
func TestMonitoringRefusedSellersAndRestarts(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{AccountIDs: []string{"ncp_ok"}, ExtraArgs: []string{"-penalty=false"}})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em) // verified: the SELF token is cached
	v.write(t, "navercommerce/roles/self", "type=SELF")
	v.write(t, "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_*")
	v.readToken(t, "navercommerce", "sellers/ncp_ok")
	policy, err := filepath.Abs(filepath.Join("..", "examples", "policy-operator.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	v.cli(t, "policy", "write", "navercommerce-operator", policy)
	operator := "VAULT_TOKEN=" + strings.TrimSpace(v.cli(t, "token", "create", "-policy=navercommerce-operator", "-field=token"))
	check := func(t *testing.T, wantExit int, want, notWant []string) string {
		t.Helper()
		out, err := recipe(t, v, "check-status.sh", []string{operator})
		if code := exitCode(t, err); code != wantExit {
			t.Errorf("check-status.sh exited %d, want %d:\n%s", code, wantExit, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("check-status.sh: the output lacks %q:\n%s", w, out)
			}
		}
		for _, w := range notWant {
			if strings.Contains(out, w) {
				t.Errorf("check-status.sh: the output has %q:\n%s", w, out)
			}
		}
		return out
	}

	t.Run("the SELF key of the verification is named by its role", func(t *testing.T) {
		check(t, 0, []string{"OK SELF - (roles: self)"}, []string{"no role names it"})
	})

	// A seller who never authorised the application (or left): one read, refused by Naver.
	if _, err := v.readTokenErr("navercommerce", "sellers/ncp_gone"); err == nil {
		t.Fatal("an account Naver refuses was served")
	}
	requests := em.stats(t).TokenRequests
	t.Run("a refused seller is a warning naming it, and is not asked again", func(t *testing.T) {
		_, err := v.readTokenErr("navercommerce", "sellers/ncp_gone")
		if err == nil || !strings.Contains(err.Error(), "refused account ncp_gone") || !strings.Contains(err.Error(), "account ID in the path") {
			t.Errorf("the second read of the refused account: %v", err)
		}
		if n := em.stats(t).TokenRequests; n != requests {
			t.Errorf("the refused account was asked for again (%d requests, was %d)", n, requests)
		}
		check(t, 1, []string{"WARNING: ", "WARNING SELLER ncp_gone (roles: sellers): Naver refused the account as not authorised",
			`account_id "ncp_gone" has not authorised this application`,
			"vault delete navercommerce/token/sellers/ncp_gone", "OK SELLER ncp_ok (roles: sellers)"}, []string{"CRITICAL", "check the role's account_id"})
	})

	t.Run("a drop clears it", func(t *testing.T) {
		resp, err := v.api.Logical().Delete("navercommerce/token/sellers/ncp_gone")
		if err != nil || resp == nil || !strings.Contains(strings.Join(resp.Warnings, " "), "refusal of the account is forgotten") {
			t.Errorf("the drop of a refused account: %v %+v", err, resp)
		}
		check(t, 0, []string{"OK: "}, []string{"WARNING", "CRITICAL"})
	})

	t.Run("after a reload nothing is OK for want of knowing", func(t *testing.T) {
		out := v.cli(t, v.env.server.PluginReloadArgs(pluginName)...)
		if !strings.Contains(out, "Reloaded") {
			t.Fatalf("vault plugin reload said: %s", out)
		}
		check(t, 0, []string{"OK SELF - (roles: self)", "OK SELLER ncp_ok (roles: sellers)"}, []string{"no role names it", "UNKNOWN"})
	})
}
