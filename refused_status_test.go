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

// "An account Naver refused is remembered (its reads fail at once with Naver's reason until
// a documented time passes or an operator drops it)": a seller who revoked the application
// while its token still had life is served that token until it expires, but Naver is not
// asked again for the account within the hour — each refused request counts against the
// whole application at Naver (issue 25, item 1).
func TestRefusedAccountWithALiveTokenIsNotAskedAgain(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
	const acct = "ncp_leaving"
	if resp, err := env.read("token/sellers/" + acct); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	// The seller revokes the application; the token enters Naver's window.
	env.naver.InjectFault(navercommercetest.Fault{Status: 403, Code: "GW.AUTHN", Message: `account_id "` + acct + `" has not authorised this application`, AccountID: acct, Count: 1000})
	env.clock.Advance(2*time.Hour + 31*time.Minute)
	env.read("token/sellers/" + acct) // served; the renewal behind it is refused
	env.b.WaitIdle()
	refusedAfter := env.requestsFor("SELLER", acct)
	for step := range 50 { // 25 minutes: the token still has life
		env.clock.Advance(30 * time.Second)
		env.read("token/sellers/" + acct)
		env.b.WaitIdle()
		if step%2 == 0 {
			env.periodic(t.Context())
			env.b.WaitIdle()
		}
	}
	if n := env.requestsFor("SELLER", acct) - refusedAfter; n != 0 {
		t.Errorf("Naver was asked %d more times for the account it refused, within the hour of the refusal", n)
	}
}
