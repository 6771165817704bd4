package navercommerce

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// Promise (README, token DELETE): "refused (401 GW.AUTHN): the token is dropped (204)", and
// the guarantee "A drop racing a storage load ... never brings the dropped token back". The
// drop keeps the key state it looked up before its probe; if the key is evicted and looked
// up again meanwhile (its role switched to another account and back, as issue 16 defect 1
// describes), the new state loads the token from storage, the drop retires it only in the
// old state and storage, answers 204, and every later read is served the token the
// operator dropped (dead at Naver).
func TestDropDuringRoleSwitchStopsServingTheDeadToken(t *testing.T) {
	env := newTestEnv(t)
	gate := &probeGate{}
	env.useTransport(gate)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	dead := env.readToken("store").Data["access_token"].(string)
	env.naver.KillToken(dead) // the seller re-authorised the application

	arrived, release := gate.arm()
	dropped := make(chan string, 1)
	go func() {
		resp, err := env.request(env.b, logical.DeleteOperation, "token/store", nil)
		msg := errorText(resp, err)
		if msg == "" && resp != nil && len(resp.Warnings) > 0 {
			msg = "warning: " + strings.Join(resp.Warnings, "; ")
		}
		dropped <- msg
	}()
	select { // the drop is asking Naver whether it still accepts the token
	case <-arrived:
	case msg := <-dropped:
		t.Fatalf("the drop ended without asking Naver whether it still accepts the token (%q)", msg)
	case <-time.After(30 * time.Second):
		t.Fatal("the drop never asked Naver whether it still accepts the token")
	}
	env.mustWrite("roles/store", map[string]any{"account_id": "ncp_other"})
	env.mustWrite("roles/store", map[string]any{"account_id": testAccount})
	env.readToken("store") // the token still looks good to the cache
	close(release)
	if msg := <-dropped; msg != "" {
		t.Fatalf("drop: %s", msg)
	}

	for i := 0; i < 3; i++ {
		tok := env.readToken("store").Data["access_token"].(string)
		if tok == dead || !env.naver.TokenValid(tok) {
			t.Fatalf("read %d after the drop answered 204 was served the dropped (dead) token", i+1)
		}
		env.clock.Advance(time.Minute)
	}
}

// Seed 140 of the simulator: after a restart, the seller re-authorised the application
// (Naver kills the token) while Naver did not answer. The drop cannot ask Naver whether
// the token is dead, so it fails and says nothing was dropped: the token stays cached and
// served (the plugin cannot know it is dead; the error points at force=true). Once Naver
// answers again, the drop takes and the dead token is never served again.
func TestDropWhileNaverDoesNotAnswerDropsNothing(t *testing.T) {
	env := newTestEnv(t)
	network := &unreachableNaver{}
	env.useTransport(network)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	dead := env.readToken("store").Data["access_token"].(string)

	env.b = env.newBackend() // a restart: the token is in storage only
	env.naver.KillToken(dead)
	network.down.Store(true)
	resp, err := env.request(env.b, logical.DeleteOperation, "token/store", nil)
	if httpStatus(resp, err) != http.StatusBadGateway || !strings.Contains(errorText(resp, err), "nothing was dropped") || !strings.Contains(errorText(resp, err), "force=true") {
		t.Fatalf("drop while Naver does not answer: %d %q, want 502 saying nothing was dropped and naming force=true", httpStatus(resp, err), errorText(resp, err))
	}
	if tok := env.storedToken("SELLER", testAccount); tok == nil || tok.Retired != "" || tok.Fingerprint != tokenFingerprint(dead) {
		t.Fatalf("stored after the failed drop: %+v, want the token as it was", tok)
	}
	if got := env.readToken("store").Data["access_token"]; got != dead {
		t.Fatal("the failed drop changed the token served")
	}

	network.down.Store(false)
	env.deleteToken("store", false)
	if got := env.readToken("store").Data["access_token"].(string); got == dead || !env.naver.TokenValid(got) {
		t.Fatal("after a drop that took, the read was not served a new, valid token")
	}
	if n := env.requestsFor("SELLER", testAccount); n != 2 {
		t.Errorf("%d token requests, want 2: the first read's and the one after the drop", n)
	}
	env.assertCompliant()
}

// Promise (Decisions): a handed-back token "never extends the token's known expiry, even
// after an operator drop". After a restart (plugin reload, leader change) the key is not in
// memory, so the drop records nothing, and the token Naver hands back gains a full 3 hours.
func TestDropAfterRestartNeverExtendsHandedBackToken(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetReusedTokenFullLifetime(true)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store")
	env.clock.Advance(time.Hour)

	env.b = env.newBackend() // restart: the token is known from storage only
	if resp, err := env.request(env.b, logical.DeleteOperation, "token/store", map[string]any{"force": true}); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	second := env.readToken("store")
	if second.Data["access_token"] != first.Data["access_token"] {
		t.Fatal("expected Naver to hand back the same token")
	}
	if left := time.Duration(second.Data["expires_in"].(int64)) * time.Second; left > 2*time.Hour {
		t.Errorf("the handed-back token is said to have %s left, it has 2h", left)
	}
}
