package navercommerce

import (
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// Issue 25, item 1: an account Naver refused "counts as refused, not failing, in status"
// (README: check-status.sh answers WARNING for it, naming the account and what to do;
// CRITICAL is for keys whose reads fail because Naver fails). Nothing happens to the key
// when the hour of the refusal passes — nobody read it, Naver was not asked — so its state
// must not turn into failing (and the check into CRITICAL) then.
func TestRefusedAccountStaysRefusedInStatus(t *testing.T) {
	env := newTestEnvWithApp(t, navercommercetest.Application{ClientID: testClientID, ClientSecret: testSecret, AccountIDs: []string{"ncp_real"}})
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
	if resp, err := env.read("token/sellers/ncp_left"); errorText(resp, err) == "" {
		t.Fatal("Naver's refusal of the account was not an error")
	}
	refusedAt := env.clock.Now()
	for _, at := range []time.Duration{0, time.Hour + time.Minute, 4 * time.Hour} {
		env.clock.Advance(refusedAt.Add(at).Sub(env.clock.Now()))
		after := at
		st := env.mustRead("status/sellers/ncp_left")
		if state := st.Data["state"]; state == "failing" {
			t.Errorf("%s after Naver's refusal: state %v, want refused (or idle): Naver did not fail", after, state)
		}
		sum := env.mustRead("status")
		if n := sum.Data["failing_keys"]; n != 0 {
			t.Errorf("%s after Naver's refusal: failing_keys %v, want 0", after, n)
		}
	}
}
