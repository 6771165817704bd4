//go:build acceptance

package acceptance

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestManySellersThroughVault: one role serves many sellers of one application, each read
// at token/<role>/<account_id>, and a Vault policy grants one seller's path to one tenant
// (examples/policy-seller.hcl), through the CLI and the HTTP API. Accounts the role does not
// allow are 400s that ask Naver nothing.
func TestManySellersThroughVault(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.enableAudit(t)
	v.configure(t, "navercommerce", em)
	v.cli(t, "write", "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_*,partner_7")

	// The tenant of ncp_abc, with the example policy.
	v.cli(t, "policy", "write", "seller-ncp_abc", filepath.Join(repoRoot(t), "examples", "policy-seller.hcl"))
	tenant := *v
	tenant.token = strings.TrimSpace(v.cli(t, "token", "create", "-policy=seller-ncp_abc", "-field=token"))
	tenantAPI, err := v.api.Clone()
	if err != nil {
		t.Fatal(err)
	}
	tenantAPI.SetToken(tenant.token)

	t.Run("CLI", func(t *testing.T) {
		table := tenant.cli(t, "read", "navercommerce/token/sellers/ncp_abc")
		for _, want := range []string{`(?m)^lease_id\s+navercommerce/token/sellers/ncp_abc/\S+$`, `(?m)^type\s+SELLER$`, `(?m)^account_id\s+ncp_abc$`, `(?m)^access_token\s+\S+$`} {
			if !regexp.MustCompile(want).MatchString(table) {
				t.Errorf("vault read navercommerce/token/sellers/ncp_abc has no line matching %s", want)
			}
		}
		tok := strings.TrimSpace(tenant.cli(t, "read", "-field=access_token", "navercommerce/token/sellers/ncp_abc"))
		noteSecret(tok, "an access token")
		if status, body := em.callAPI(t, tok); status != http.StatusOK || body["accountId"] != "ncp_abc" {
			t.Errorf("the emulator's API answered %d %v to ncp_abc's token", status, body)
		}
		for _, args := range [][]string{
			{"read", "navercommerce/token/sellers/ncp_def"},
			{"read", "navercommerce/token/sellers"},
			{"read", "navercommerce/status/sellers/ncp_abc"},
			{"delete", "navercommerce/token/sellers/ncp_abc"},
		} {
			if out, err := tenant.cliErr(args...); err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("tenant of ncp_abc, vault %s: want permission denied, got %v %s", strings.Join(args, " "), err, out)
			}
		}
	})

	t.Run("HTTP", func(t *testing.T) {
		s, err := tenantAPI.Logical().Read("navercommerce/token/sellers/ncp_abc")
		if err != nil {
			t.Fatalf("tenant read of its seller: %v", err)
		}
		tok, err := v.parseToken(s)
		if err != nil || tok.AccountID != "ncp_abc" || !em.valid(t, tok.AccessToken) {
			t.Errorf("tenant read: %+v %v", tok, err)
		}
		_, err = tenantAPI.Logical().Read("navercommerce/token/sellers/ncp_def")
		requireStatus(t, err, http.StatusForbidden, "permission denied")

		// The operator (root here) reads any allowed seller; each seller its own token.
		def := v.readToken(t, "navercommerce", "sellers/ncp_def")
		partner := v.readToken(t, "navercommerce", "sellers/partner_7")
		if def.AccountID != "ncp_def" || partner.AccountID != "partner_7" || def.AccessToken == tok.AccessToken {
			t.Errorf("sellers' tokens: %+v %+v", def, partner)
		}
		before := em.stats(t).TokenRequests
		_, err = v.api.Logical().Read("navercommerce/token/sellers/partner_8")
		requireStatus(t, err, http.StatusBadRequest, `"partner_8"`, "not one of the sellers")
		_, err = v.api.Logical().Read("navercommerce/token/sellers")
		requireStatus(t, err, http.StatusBadRequest, "serves many sellers", "token/sellers/<account_id>")
		_, err = v.api.Logical().Read("navercommerce/token/sellers/ncp_a*")
		requireStatus(t, err, http.StatusBadRequest, "not a pattern")
		if after := em.stats(t); after.TokenRequests != before {
			t.Errorf("refused accounts reached Naver: %d requests, was %d", after.TokenRequests, before)
		}
		if st := em.stats(t); st.Keys[em.key("SELLER", "ncp_abc")].Requests != 1 || len(st.Violations) != 0 {
			t.Errorf("emulator: %+v", st)
		}

		// Operator views: one seller, the role as a whole, the summary.
		s, err = v.api.Logical().Read("navercommerce/status/sellers/ncp_def")
		if err != nil || s.Data["cached"] != true || s.Data["account_id"] != "ncp_def" {
			t.Errorf("status/sellers/ncp_def: %v %v", s, err)
		}
		s, err = v.api.Logical().Read("navercommerce/status/sellers")
		if err != nil || atoi(t, s.Data["known_keys"]) != 3 {
			t.Errorf("status/sellers: %v %v", s, err)
		}
		s, err = v.api.Logical().ReadWithData("navercommerce/status", map[string][]string{"role": {"sellers"}, "limit": {"2"}})
		if err != nil || len(s.Data["keys"].([]any)) != 2 || s.Data["next_after"] != "SELLER|ncp_def" {
			t.Errorf("status role=sellers limit=2: %v %v", s, err)
		}
	})

	out := v.cli(t, "read", "navercommerce/status")
	for _, want := range []string{`(?m)^known_keys\s+4$`, `(?m)^failing_keys\s+0$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("vault read navercommerce/status has no line matching %s:\n%s", want, out)
		}
	}
	if out := v.cli(t, "read", "navercommerce/status", "account_id=partner_7"); !strings.Contains(out, "partner_7") {
		t.Errorf("vault read navercommerce/status account_id=partner_7:\n%s", out)
	}
}
