package navercommerce

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// unreachableNaver is a network on which, while down, no request reaches Naver.
type unreachableNaver struct{ down atomic.Bool }

func (u *unreachableNaver) RoundTrip(req *http.Request) (*http.Response, error) {
	if u.down.Load() {
		return nil, fmt.Errorf("no answer: %w", context.DeadlineExceeded)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Seed 140 of the simulator: after a restart, the seller re-authorised the application
// (Naver kills the token) while Naver did not answer. The drop cannot ask Naver whether
// the token is dead, so it fails and says nothing was dropped: the token stays cached and
// served (the plugin cannot know it is dead; the error points at force=true). Once Naver
// answers again, the drop takes and the dead token is never served again.
func TestSeed140DropWhileNaverDoesNotAnswerDropsNothing(t *testing.T) {
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
