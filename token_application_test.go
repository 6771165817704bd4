package navercommerce

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// Issue 18: a few minutes of 503s over 11 sellers sent 66 requests (each key within its own
// budget of 6), the emulator penalised the application, and no seller was served for an
// hour after Naver recovered.
func TestRetryStormOverManySellersEndsWithEverySellerServed(t *testing.T) {
	env := newTestEnv(t) // the emulator's penalty is on: more than 60 requests an hour
	env.configure()
	const sellers = 11
	for i := range sellers {
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_s%d", i)})
	}
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, Count: 1 << 20})
	for range 18 { // 3 minutes, every seller's app reading every 10 s
		for i := range sellers {
			env.read(fmt.Sprintf("token/s%d", i))
		}
		env.clock.Advance(10 * time.Second)
	}
	duringStorm := env.naver.TokenRequests()
	env.naver.ClearFaults() // Naver recovers

	served := map[int]time.Duration{}
	for elapsed := time.Duration(0); elapsed <= 10*time.Minute && len(served) < sellers; elapsed += 10 * time.Second {
		for i := range sellers {
			if _, ok := served[i]; ok {
				continue
			}
			if resp, err := env.read(fmt.Sprintf("token/s%d", i)); errorText(resp, err) == "" {
				served[i] = elapsed
				env.tokens = append(env.tokens, resp.Data["access_token"].(string))
			}
		}
		env.clock.Advance(10 * time.Second)
	}
	if len(served) != sellers {
		t.Errorf("%d of %d sellers served within 10 minutes of Naver's recovery", len(served), sellers)
	}
	// Once a probe finds Naver back, the sellers that failed in the storm ask at once, not
	// at their pace (README: "served within a probe interval of Naver's recovery").
	for i, at := range served {
		if at > time.Minute {
			t.Errorf("seller %d served %v after Naver recovered; want within a minute", i, at)
		}
	}
	t.Logf("requests during the 3-minute storm: %d; sellers served after recovery at %v", duringStorm, served)
	if duringStorm > 15 {
		t.Errorf("%d requests during a 3-minute storm; the breaker should let about one probe a minute through", duringStorm)
	}
	env.assertCompliant()
	if st := env.naver.Stats(); len(st.Penalties) > 0 {
		t.Errorf("the application was penalised: %+v", st.Penalties)
	}
}

// The application budget binds across keys and across a restart, and names itself.
func TestApplicationBudget(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_application_requests_per_hour": 3})
	for i := range 4 {
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_s%d", i)})
	}
	for i := range 3 {
		env.readToken(fmt.Sprintf("s%d", i))
	}
	check := func(when string) {
		t.Helper()
		r, err := env.read("token/s3")
		if got := httpStatus(r, err); got != http.StatusTooManyRequests || !strings.Contains(errorText(r, err), "max_application_requests_per_hour") {
			t.Errorf("%s: %d %q, want 429 naming max_application_requests_per_hour", when, got, errorText(r, err))
		}
	}
	check("fourth seller")
	env.b = env.newBackend() // a restart (or a crash loop) does not start the hour afresh
	check("after a restart")
	if env.naver.TokenRequests() != 3 {
		t.Errorf("%d requests, want 3", env.naver.TokenRequests())
	}
	resp, err := env.request(env.b, logical.ReadOperation, "metrics", map[string]any{"format": "prometheus"})
	if err != nil {
		t.Fatal(err)
	}
	body := string(resp.Data["http_raw_body"].([]byte))
	for _, want := range []string{"navercommerce_application_budget_refusals_total 1", "navercommerce_application_requests_last_hour 3", "navercommerce_application_request_budget_per_hour 3"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	env.clock.Advance(time.Hour + time.Minute)
	env.readToken("s3")
}

// Sellers onboarded together renew together forever unless renewals spread over Naver's
// window: measured here over 30 hours of 100 sellers read every 5 minutes, against the
// same run with every renewal at the window's start.
func TestRenewalsSpreadOut(t *testing.T) {
	if testing.Short() {
		t.Skip("30 simulated hours of 100 sellers")
	}
	busiest := func(spread bool) (ratio float64) {
		env := newTestEnv(t)
		env.spreadRenewals = spread
		env.b = env.newBackend()
		env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true}) // 100 sellers ask more than 60 an hour
		env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "verify_connection": false})
		const sellers = 100
		for i := range sellers {
			env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_s%d", i)})
		}
		start := env.clock.Now()
		perBucket := map[int]int{} // requests per 30 minutes, from hour 20 on
		last := 0
		for m := 0; m < 30*60; m++ {
			if m%5 == 0 {
				for i := range sellers {
					env.read(fmt.Sprintf("token/s%d", i))
				}
			}
			env.periodic(t.Context())
			for i := range sellers {
				waitForFlights(env.b, tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: fmt.Sprintf("ncp_s%d", i)})
			}
			if n := env.naver.TokenRequests(); m >= 20*60 {
				perBucket[int(env.clock.Now().Sub(start)/(30*time.Minute))] += n - last
				last = n
			} else {
				last = n
			}
			env.clock.Advance(time.Minute)
		}
		total, most := 0, 0
		for _, n := range perBucket {
			total += n
			most = max(most, n)
		}
		avg := float64(total) / float64(len(perBucket))
		env.assertCompliant()
		return float64(most) / avg
	}
	spread, together := busiest(true), busiest(false)
	t.Logf("busiest 30 minutes against the average, hours 20-30: %.2f× spread, %.2f× at the window's start", spread, together)
	if spread > 2 {
		t.Errorf("with renewals spread, the busiest 30 minutes carry %.2f× the average, want at most 2×", spread)
	}
	if together < 3 {
		t.Errorf("control: without spreading the busiest 30 minutes carry only %.2f× the average; the test measures nothing", together)
	}
}

// The automatic budget is sized by the keys in use, but a key's requests count for the
// hour after it leaves use (its role deleted, its account no longer allowed, its token
// evicted): Naver still counts them. Sized by the keys in use now, 100 sellers' hour of
// renewals against the 10 left (30 + 2 × 10 = 50) refused a healthy application's next
// seller with 429 for up to an hour.
func TestAutomaticApplicationBudgetAfterSellersLeave(t *testing.T) {
	const sellers, kept = 100, 10
	for _, tc := range []struct {
		name        string
		manySellers bool // one role allowing every seller, narrowed; else a role per seller, deleted
		restart     bool // keys in use are counted from storage
	}{
		{name: "roles deleted, background renewals in the hour"},
		{name: "roles deleted, restart", restart: true},
		{name: "many-seller role narrowed, background renewals in the hour", manySellers: true},
		{name: "many-seller role narrowed, restart", manySellers: true, restart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true}) // 100 sellers ask more than 60 an hour
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "verify_connection": false})
			account := func(i int) string {
				if i == sellers {
					return "ncp_keep_new" // a seller added after the others left
				}
				if i < kept {
					return fmt.Sprintf("ncp_keep%d", i)
				}
				return fmt.Sprintf("ncp_gone%d", i)
			}
			path := func(i int) string { return fmt.Sprintf("s%d", i) }
			if tc.manySellers {
				env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})
				path = func(i int) string { return "sellers/" + account(i) }
			} else {
				for i := range sellers + 1 {
					env.mustWrite("roles/"+path(i), map[string]any{"type": "SELLER", "account_id": account(i)})
				}
			}
			start := env.clock.Now()
			for i := range sellers {
				env.readToken(path(i))
			}
			if !tc.restart {
				// Every seller's token is renewed in the background 2.5 hours on, with no
				// read since: 3 hours after the reads they are no longer in use.
				env.clock.Advance(2*time.Hour + 31*time.Minute)
				env.periodic(t.Context())
				env.b.WaitIdle()
				if got := env.naver.TokenRequests(); got != 2*sellers {
					t.Fatalf("%d requests, want %d: the reads and one background renewal each", got, 2*sellers)
				}
			}
			// The operator removes all but 10 sellers.
			if tc.manySellers {
				env.mustWrite("roles/sellers", map[string]any{"allowed_account_ids": "ncp_keep*"})
			} else {
				for i := kept; i < sellers; i++ {
					if resp, err := env.request(env.b, logical.DeleteOperation, "roles/"+path(i), nil); errorText(resp, err) != "" {
						t.Fatal(errorText(resp, err))
					}
				}
			}
			env.clock.Advance(time.Minute)
			env.periodic(t.Context())
			if tc.restart {
				env.b = env.newBackend()
			} else {
				env.clock.Advance(start.Add(3*time.Hour + 5*time.Minute).Sub(env.clock.Now()))
			}
			env.periodic(t.Context())
			env.b.WaitIdle()

			// The application asked 100 times in the last hour, within the budget it had;
			// its next seller is healthy and must be served.
			resp, err := env.read("token/" + path(sellers))
			if got := httpStatus(resp, err); got != http.StatusOK {
				t.Fatalf("the next seller of a healthy application after 90 of 100 left: %d %q", got, errorText(resp, err))
			}
			env.tokens = append(env.tokens, resp.Data["access_token"].(string))
			for i := range kept {
				env.readToken(path(i))
			}
			status := env.statusList(nil)
			if n, budget := status.Data[fieldAppRequests].(int), status.Data[fieldAppBudget].(int); n > budget {
				t.Errorf("status: %d requests in the last hour against a budget of %d", n, budget)
			}
			// Once their requests no longer count, the sellers that left no longer size it.
			env.clock.Advance(appWindow + time.Minute)
			env.periodic(t.Context())
			env.b.WaitIdle()
			if got, want := env.statusList(nil).Data[fieldAppBudget], appBudgetFloor+appBudgetPerKey*(kept+1); got != want {
				t.Errorf("status %s an hour after the sellers left: %v, want %d (the 11 sellers in use)", fieldAppBudget, got, want)
			}
			env.assertCompliant()
		})
	}
}
