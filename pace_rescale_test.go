package navercommerce

import (
	"net/http"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// make sim, seed 819 (shrunk): a 429 storm with Retry-After while the key's budget is 4
// (one paced request an hour), then an operator raises the budget to 8. The pace owed was
// reckoned in hours and kept: reads failed with "not asking Naver before …" more than an
// hour after Naver was healthy again. What a key owes the pace is kept in requests, and
// the new budget's interval applies to it.
func TestRaisedBudgetPacesWhatIsOwedAtItsOwnInterval(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"max_token_requests_per_hour": 4, "verify_connection": false})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "60", Count: 8})
	for _, wait := range []time.Duration{0, 28 * time.Minute} {
		env.clock.Advance(wait)
		if resp, err := env.read("token/store"); errorText(resp, err) == "" {
			t.Fatal("a read during the storm was served")
		}
		env.periodic(t.Context())
	}
	env.naver.ClearFaults() // the storm is over
	env.clock.Advance(12 * time.Minute)
	env.mustWrite("config", map[string]any{"max_token_requests_per_hour": 8})
	// One interval of the new budget (12 minutes) and the 5-minute margin of the recovers
	// promise later:
	for elapsed := time.Duration(0); elapsed < 17*time.Minute; elapsed += time.Minute {
		env.clock.Advance(time.Minute)
		env.periodic(t.Context())
	}
	if resp, err := env.read("token/store"); errorText(resp, err) != "" {
		t.Fatalf("a read 17 minutes after the budget was raised, long after the storm: %s", errorText(resp, err))
	}
	env.assertCompliant()
}
