package navercommerce

import (
	"fmt"
	"strings"
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

// What an operator and a monitoring check see of an account Naver refused, through the
// backend: the read's 400 names the account and points at the path (not the role's
// account_id); the next read fails at once, asking Naver nothing; status says refused, until
// when and why, and counts it (refused_keys, key_states) apart from failing keys; the metrics
// gauge counts it; a drop forgets the refusal with a warning saying so, and the next read
// asks Naver again.
func TestRefusedAccountThroughTheBackend(t *testing.T) {
	env := newTestEnvWithApp(t, navercommercetest.Application{ClientID: testClientID, ClientSecret: testSecret, AccountIDs: []string{"ncp_real"}})
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
	const acct = "ncp_left"
	refusedKeys := func() float64 {
		t.Helper()
		resp := env.mustRead("metrics")
		v, _ := resp.Data["navercommerce_refused_keys"].(float64)
		return v
	}

	resp, err := env.read("token/sellers/" + acct)
	if code, msg := httpStatus(resp, err), errorText(resp, err); code != 400 || !strings.Contains(msg, acct) || !strings.Contains(msg, "account ID in the path") {
		t.Fatalf("the first read of an account Naver refuses: %d %q, want 400 naming %s and the path", code, msg, acct)
	}
	refusedAt := env.clock.Now()
	asked := env.requestsFor("SELLER", acct)
	resp, err = env.read("token/sellers/" + acct)
	if code, msg := httpStatus(resp, err), errorText(resp, err); code != 400 || !strings.Contains(msg, acct) {
		t.Errorf("the second read: %d %q, want 400 naming %s", code, msg, acct)
	}
	if n := env.requestsFor("SELLER", acct); n != asked {
		t.Errorf("the second read asked Naver (%d requests, was %d)", n, asked)
	}

	st := env.mustRead("status/sellers/" + acct)
	if st.Data["state"] != "refused" {
		t.Errorf("status state = %v, want refused", st.Data["state"])
	}
	if until, err := time.Parse(time.RFC3339, fmt.Sprint(st.Data["refused_until"])); err != nil || !until.Equal(refusedAt.Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("refused_until = %v, want an hour after the refusal (%s)", st.Data["refused_until"], refusedAt.Add(time.Hour))
	}
	if reason, _ := st.Data["refused_reason"].(string); !strings.Contains(reason, acct) {
		t.Errorf("refused_reason = %q, want Naver's answer naming the account", reason)
	}
	sum := env.mustRead("status")
	if sum.Data["refused_keys"] != 1 || sum.Data["failing_keys"] != 0 {
		t.Errorf("status: refused_keys %v, failing_keys %v; want 1 and 0", sum.Data["refused_keys"], sum.Data["failing_keys"])
	}
	if states, _ := sum.Data["key_states"].(map[string]any); states["refused"] != 1 {
		t.Errorf("status key_states = %v, want refused 1", sum.Data["key_states"])
	}
	if n := refusedKeys(); n != 1 {
		t.Errorf("navercommerce_refused_keys = %v, want 1", n)
	}

	drop := env.deleteToken("sellers/"+acct, false)
	if !strings.Contains(strings.Join(drop.Warnings, " "), "refusal of the account is forgotten") {
		t.Errorf("the drop's warnings %q do not say the refusal is forgotten", drop.Warnings)
	}
	if st := env.mustRead("status/sellers/" + acct); st.Data["state"] == "refused" {
		t.Errorf("after the drop: state refused")
	}
	if sum := env.mustRead("status"); sum.Data["refused_keys"] != 0 {
		t.Errorf("after the drop: refused_keys %v, want 0", sum.Data["refused_keys"])
	}
	if n := refusedKeys(); n != 0 {
		t.Errorf("after the drop: navercommerce_refused_keys = %v, want 0", n)
	}
	env.clock.Advance(10 * time.Second) // past the back-off of the refused request
	env.read("token/sellers/" + acct)
	if n := env.requestsFor("SELLER", acct); n != asked+1 {
		t.Errorf("the read after the drop made %d requests, want 1 (the refusal is forgotten)", n-asked)
	}
}
