package navercommerce

import (
	"context"
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

// README, max_application_requests_per_hour: "Reads that apps wait on may use all of it,
// background renewals 75%." With max_application_requests_per_hour=1, 75% is less than one
// request, yet request() gives background renewals max(1, ...) = the whole budget: a
// background renewal spends it and the read an app waits on gets a 429.
func TestBackgroundShareAtASmallBudget(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_application_requests_per_hour": 1})
	env.mustWrite("roles/a", map[string]any{"type": "SELLER", "account_id": "ncp_a"})
	env.mustWrite("roles/b", map[string]any{"type": "SELLER", "account_id": "ncp_b"})
	env.readToken("a")
	env.clock.Advance(3*time.Hour - 25*time.Minute) // a's token is in Naver's window; the hour has passed
	env.readToken("a")                              // served at once, renewed behind the read
	waitForFlights(env.b, tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: "ncp_a"})
	env.periodic(t.Context())
	background := env.requestsFor("SELLER", "ncp_a") - 1
	resp, err := env.read("token/b")
	if background > 0 && httpStatus(resp, err) == http.StatusTooManyRequests {
		t.Errorf("background renewals used %d of a budget of 1 and a read waited on got %d %q", background, httpStatus(resp, err), errorText(resp, err))
	}
	if err == nil && !resp.IsError() {
		env.tokens = append(env.tokens, resp.Data["access_token"].(string))
	}
}

// README "What to watch": "vault read navercommerce/status failing=true  # every failing
// seller, with its last error", and "alert on ... navercommerce_budget_refusals_total ... and
// use `status failing=true` to see which sellers are behind them"; state `idle` is "no token,
// no failure". During a storm the breaker (or a budget) refuses every seller but the first
// three: their reads fail with 502/429, yet status counts them idle, not failing, and
// `failing=true` leaves them out — at 10,000 sellers it shows 3 of them.
func TestSellersRefusedByTheBreakerAreFailing(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0})
	const sellers = 11
	for i := range sellers {
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_s%d", i)})
	}
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, Count: 1 << 20})
	failed := 0
	for i := range sellers {
		if r, err := env.read(fmt.Sprintf("token/s%d", i)); errorText(r, err) != "" {
			failed++
		}
	}
	if failed != sellers {
		t.Fatalf("%d of %d reads failed; the test expects all to", failed, sellers)
	}
	resp := env.statusList(map[string]any{"failing": true})
	if got := resp.Data["failing_keys"]; got != sellers {
		t.Errorf("status failing=true: failing_keys %v, want %d (every seller's read failed); key_states %v", got, sellers, resp.Data["key_states"])
	}
}

// README, max_application_requests_per_hour: "Automatic: 30 + 2 per token in use (read
// within the last 3 hours) ... kept in storage across restarts", and issue 18: "Its default
// must never refuse a healthy application". The request counts survive a restart but the
// keys in use do not: after a restart only keys read since count (stored tokens are brought
// into memory only by status or metrics), so 40 sellers onboarded in the last hour — a
// healthy application, 40 requests against an automatic budget of 110 — leave a budget of
// 32 after a restart, and the next new seller's read is refused with 429.
func TestAutomaticBudgetAfterARestart(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false})
	const sellers = 40
	for i := range sellers + 1 {
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_s%d", i)})
	}
	for i := range sellers {
		env.readToken(fmt.Sprintf("s%d", i))
		env.clock.Advance(time.Minute)
	}
	env.periodic(t.Context())

	env.b = env.newBackend() // a restart
	env.periodic(t.Context())
	resp, err := env.read(fmt.Sprintf("token/s%d", sellers)) // a new seller
	if got := httpStatus(resp, err); got != http.StatusOK {
		t.Errorf("a new seller after a restart of a healthy application of %d sellers: %d %q", sellers, got, errorText(resp, err))
	} else {
		env.tokens = append(env.tokens, resp.Data["access_token"].(string))
	}
	env.assertCompliant()
}

// README, max_application_requests_per_hour: "kept in storage across restarts" (issue 18:
// "kept across restarts and crash loops"). When reading the stored counts after a restart
// fails once, request() goes on "counting from now" (a choice the log states), but then
// record() overwrites the stored counts with the in-memory ones: the requests made before
// the restart are gone from storage for good, and once storage answers again the budget is
// judged without them. Here a budget of 5 was spent before the restart; after one failed
// read of the counts, every new seller is sent to Naver again.
func TestFailedCountsReadKeepsTheStoredCounts(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	fs := &appReadFailingStorage{Storage: env.storage}
	env.storage = fs
	env.b = env.newBackend()
	const budget = 5
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_application_requests_per_hour": budget})
	for i := range 12 {
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_s%d", i)})
	}
	for i := range budget {
		env.readToken(fmt.Sprintf("s%d", i))
	}

	env.b = env.newBackend() // a restart
	fs.failing.Store(true)
	env.read(fmt.Sprintf("token/s%d", budget)) // counted from now: one request over the budget
	fs.failing.Store(false)
	for i := budget + 1; i < 12; i++ { // storage answers again
		env.read(fmt.Sprintf("token/s%d", i))
	}
	if n := env.naver.TokenRequests(); n > budget+1 {
		t.Errorf("%d requests within the hour against max_application_requests_per_hour=%d (one allowed while the counts could not be read)", n, budget)
	}
}

// README, max_application_requests_per_hour: "the most HTTP requests the whole application
// may send in any hour". The application's counts are kept per minute and a minute drops out
// of "the last hour" as soon as 60 minute boundaries have passed, so requests sent late in a
// minute stop counting up to a minute early: here a budget of 3 spent at 12:00:50 lets 3
// more go at 13:00:00, 6 requests within 59m10s.
func TestApplicationBudgetIsASlidingHour(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_application_requests_per_hour": 3})
	for i := range 4 {
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_s%d", i)})
	}
	start := env.clock.Now().Truncate(time.Minute).Add(time.Minute + 50*time.Second)
	env.clock.Advance(start.Sub(env.clock.Now()))
	for i := range 3 {
		env.readToken(fmt.Sprintf("s%d", i))
	}
	env.clock.Advance(59*time.Minute + 10*time.Second) // the next hour's minute boundary
	resp, err := env.read("token/s3")
	if got := httpStatus(resp, err); got != http.StatusTooManyRequests {
		t.Errorf("a fourth request %s after the first three: %d, want 429 (max_application_requests_per_hour=3 in any hour)",
			env.clock.Now().Sub(start), got)
		if got == http.StatusOK {
			env.tokens = append(env.tokens, resp.Data["access_token"].(string))
		}
	}
}

// README, config verify_connection: "before storing new credentials, request a SELF token;
// if Naver refuses, answer 400 with Naver's reason and keep the old config". The
// verification request feeds the application's breaker (keyed by client_id only): three
// config writes with a mistyped base_url (nothing answers there) are counted as Naver
// failing, the breaker opens, and the application's sellers — served by the old config,
// whose Naver is healthy — are refused.
func TestFailedVerificationsLeaveTheLiveConfigsBreakerClosed(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false})
	env.mustWrite("roles/s0", map[string]any{"type": "SELLER", "account_id": "ncp_s0"})
	env.mustWrite("roles/s1", map[string]any{"type": "SELLER", "account_id": "ncp_s1"})
	env.readToken("s0")
	for range 3 {
		resp, err := env.write("config", map[string]any{"client_secret": testSecret, "base_url": "http://127.0.0.1:1", "max_retries": 0})
		if errorText(resp, err) == "" {
			t.Fatal("a config write with an unreachable base_url was accepted")
		}
	}
	resp, err := env.read("token/s1") // the old config, a healthy Naver
	if got := httpStatus(resp, err); got != http.StatusOK {
		t.Errorf("after 3 rejected config writes, a seller of the live config: %d %q", got, errorText(resp, err))
	} else {
		env.tokens = append(env.tokens, resp.Data["access_token"].(string))
	}
}

// Promise (README.md "Many sellers" → Budgets, README.ko.md likewise; docs/decisions.md
// "Budget" and "A new seller's first read"): the application's budget "counts every
// request ... and is kept in storage before each request is sent, so restarts and crash
// loops do not reset it"; "every request sent is counted in storage".
//
// When the stored counts cannot be read (a storage hiccup at the first request after a
// start, or an entry that does not decode), the request is sent anyway and appGuard.store
// silently skips the write ("until the stored counts were read, writing would erase them"):
// requests leave counted nowhere but in memory, and a restart starts the hour afresh. An
// unreadable entry is never repaired, so every restart of a crash loop starts at zero.
// When the write of the counts fails, the request is sent all the same (the failure is only
// logged): the budget then holds only until the next restart. Refusing to send while the
// count cannot be stored is the literal promise; if failing open is preferred, the README
// and docs/decisions.md should say so.
func TestEveryRequestSentIsCountedInStorageEvenWhenTheCountsCannotBeReadOrWritten(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, s *appCountStorage)
	}{
		{"one failed read of the counts after a start", func(t *testing.T, s *appCountStorage) {
			s.failGets.Store(1)
		}},
		{"writes of the counts failing", func(t *testing.T, s *appCountStorage) {
			s.failPuts.Store(true)
		}},
		{"a stored entry that does not decode", func(t *testing.T, s *appCountStorage) {
			entry := &logical.StorageEntry{Key: appStorageKey(testClientID), Value: []byte("{not json")}
			if err := s.Storage.Put(context.Background(), entry); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			defer func() {
				if s, ok := env.storage.(*appCountStorage); ok {
					s.failPuts.Store(false)
				}
			}()
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "verify_connection": false})
			env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})

			// A restart over the same storage, whose first read of the counts fails.
			storage := &appCountStorage{Storage: env.storage}
			tc.setup(t, storage)
			transport := &sendCheckTransport{}
			env.storage, env.transport = storage, transport
			env.b = env.newBackend()

			sent := 0
			if storage.failPuts.Load() {
				// Nothing is sent while the count cannot be stored: the read fails, naming
				// storage; a cached token would be served (see the cold-path tests).
				transport.check = func() { t.Error("a request was sent while the count could not be stored") }
				resp, err := env.read("token/sellers/ncp_r3count0")
				if err == nil && !resp.IsError() {
					t.Fatal("a read succeeded while the count could not be stored")
				}
				if msg := fmt.Sprint(err, resp.Error()); !strings.Contains(msg, "storage failed") {
					t.Errorf("the failed read does not say that storage failed: %s", msg)
				}
				env.b.WaitIdle()
				storage.failPuts.Store(false)
			}
			transport.check = func() {
				sent++
				if stored := storedAppRequests(env.storage); stored < sent {
					t.Errorf("request %d left with %d requests counted in storage", sent, stored)
				}
			}
			const sellers = 5
			for i := range sellers {
				env.readToken(fmt.Sprintf("sellers/ncp_r3count%d", i))
			}
			env.b.WaitIdle()
			if sent != sellers {
				t.Fatalf("%d requests sent for %d new sellers", sent, sellers)
			}

			// A restart (the crash loop's next round): the hour's requests must still count.
			transport.check = nil
			env.b = env.newBackend()
			resp, err := env.read("status")
			if err != nil || resp.IsError() {
				t.Fatalf("read status: %v %v", err, resp.Error())
			}
			if got, _ := resp.Data[fieldAppRequests].(int); got < sellers {
				t.Errorf("after a restart %s = %v, want at least the %d requests sent this hour", fieldAppRequests, resp.Data[fieldAppRequests], sellers)
			}
			env.assertCompliant()
		})
	}
}

// Promise (README.md "When Naver is down", README.ko.md likewise; the help of
// max_token_requests_per_hour): "A storm never spends a key's hourly budget: while Naver
// fails, a key sends a burst of up to 3 requests ..., then one request every hour /
// (max_token_requests_per_hour − 3)"; README.md "Many sellers": "A seller's own budget is
// never spent by a storm".
//
// The pace leaves room for one burst in the hour, but requests the key sent while Naver was
// healthy in the minutes before the storm (here an operator dropped its dead token twice:
// three requests) already used that room: the pace "owes no more than an empty" burst for
// them, and the storm's own first request plus eight paced ones make 12 in under an hour —
// the key's whole budget. Short recoveries in between (a probe of another seller finds
// Naver back, the key asks at once and fails again) change nothing: the budget is reached
// all the same.
func TestAStormAfterABusyMinuteNeverSpendsAKeysBudget(t *testing.T) {
	for _, recoveries := range []int{0, 5} {
		t.Run(fmt.Sprintf("%d short recoveries", recoveries), func(t *testing.T) {
			stormAfterABusyMinute(t, recoveries)
		})
	}
}

func stormAfterABusyMinute(t *testing.T, recoveries int) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0})
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*", "max_new_accounts_per_hour": 100})
	const k = "sellers/ncp_r3k"
	key := tokenKey{ClientID: testClientID, Type: tokenTypeSeller, AccountID: "ncp_r3k"}
	start := env.clock.Now()
	const limit = 12 // the default max_token_requests_per_hour
	assertUnspent := func(when string) {
		t.Helper()
		if n := env.b.tokens.requestsLastHour(key); n >= limit {
			t.Fatalf("%s (+%s): the key has sent %d requests in the last hour, its whole budget of %d (Naver has %d from it since +0)",
				when, env.clock.Now().Sub(start).Round(time.Second), n, limit, env.requestsFor(tokenTypeSeller, "ncp_r3k"))
		}
	}
	fresh := 0
	readFresh := func(fail bool) {
		t.Helper()
		fresh++
		env.naver.ClearFaults()
		if fail {
			env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable})
			env.read(fmt.Sprintf("token/sellers/ncp_r3q%d", fresh)) //nolint:errcheck // it fails
			return
		}
		env.readToken(fmt.Sprintf("sellers/ncp_r3p%d", fresh))
	}
	readKFailing := func() {
		t.Helper()
		env.naver.ClearFaults()
		env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable})
		env.read("token/" + k) //nolint:errcheck // Naver fails
		env.naver.ClearFaults()
	}
	dropDead := func(resp *logical.Response) {
		t.Helper()
		env.naver.KillToken(resp.Data["access_token"].(string))
		if resp, err := env.request(env.b, logical.DeleteOperation, "token/"+k, nil); err != nil || resp.IsError() {
			t.Fatalf("drop: %v %v", err, resp.Error())
		}
	}

	// The minute before the storm, Naver healthy: the key's token dies twice and an operator
	// drops it; three requests.
	for i := range 3 {
		resp := env.readToken(k)
		if i < 2 {
			dropDead(resp)
		}
		env.clock.Advance(10 * time.Second)
	}
	env.clock.Advance(30 * time.Second)

	// The storm: the key's token dies; its read fails.
	dropDead(env.readToken(k))
	readKFailing()
	for round := range recoveries {
		readFresh(true)
		readFresh(true) // three failures in a row: the breaker opens
		env.clock.Advance(31 * time.Second)
		readFresh(false) // the probe finds Naver back
		env.clock.Advance(time.Second)
		readKFailing() // the key asks at once, and fails
		assertUnspent(fmt.Sprintf("recovery %d", round+1))
	}
	// Naver keeps failing for the key (others are served, so the breaker stays closed);
	// the key keeps to its pace.
	for env.clock.Now().Before(start.Add(time.Hour)) {
		env.clock.Advance(30 * time.Second)
		before := env.requestsFor(tokenTypeSeller, "ncp_r3k")
		readKFailing()
		assertUnspent("storm")
		if env.requestsFor(tokenTypeSeller, "ncp_r3k") > before {
			readFresh(false)
		}
	}
	env.assertCompliant()
}
