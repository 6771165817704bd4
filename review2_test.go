package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// spreadAccount is a seller whose renewal point lies at least min into Naver's window.
func spreadAccount(t *testing.T, min time.Duration) string {
	t.Helper()
	for i := range 100 {
		acct := fmt.Sprintf("ncp_spread%d", i)
		if renewSpread(tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: acct}, renewSpreadWidth) >= min {
			return acct
		}
	}
	t.Fatal("no account with that spread")
	return ""
}

// README, min_remaining_ttl: "min_remaining_ttl renews a key whose token is short of the most
// any role reading it asks" and renewal_spread: renewals move "to a point stable for the
// token". Once the only role with min_remaining_ttl is deleted (or lowered to 0), no role
// reading the key asks for 29 minutes, so the key renews at its spread point again. Today
// keyState.minLife only ever rises: the key renews at 29 minutes left forever (until a
// restart), and the spread of that key is lost.
func TestReview2MinRemainingTTLOutlivesItsRole(t *testing.T) {
	for _, how := range []string{"control: never set", "deleted", "lowered to 0"} {
		t.Run(how, func(t *testing.T) {
			env := newTestEnv(t)
			env.spreadRenewals = true
			env.b = env.newBackend()
			acct := spreadAccount(t, 10*time.Minute) // renews with 20 minutes left or less
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"verify_connection": false, "background_refresh": false})
			strict := map[string]any{"type": "SELLER", "account_id": acct, "min_remaining_ttl": "29m"}
			if how == "control: never set" {
				strict["min_remaining_ttl"] = 0
			}
			env.mustWrite("roles/strict", strict)
			env.mustWrite("roles/plain", map[string]any{"type": "SELLER", "account_id": acct})
			env.readToken("strict")
			switch how {
			case "deleted":
				if _, err := env.request(env.b, logical.DeleteOperation, "roles/strict", nil); err != nil {
					t.Fatal(err)
				}
			case "lowered to 0":
				env.mustWrite("roles/strict", map[string]any{"min_remaining_ttl": 0})
			}
			env.periodic(t.Context())

			env.clock.Advance(3*time.Hour - 28*time.Minute) // 28 minutes left: before the key's point
			env.periodic(t.Context())
			env.readToken("plain")
			if n := env.requestsFor("SELLER", acct); n != 1 {
				t.Errorf("%d requests: the key renewed with 28 minutes left for a min_remaining_ttl no role asks any more (its spread point is %s into the window)",
					n, renewSpread(tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: acct}, renewSpreadWidth))
			}
			env.assertCompliant()
		})
	}
}

// README, max_application_requests_per_hour: "Reads that apps wait on may use all of it,
// background renewals 75%." With max_application_requests_per_hour=1, 75% is less than one
// request, yet request() gives background renewals max(1, ...) = the whole budget: a
// background renewal spends it and the read an app waits on gets a 429.
func TestReview2BackgroundShareAtASmallBudget(t *testing.T) {
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
func TestReview2SellersRefusedByTheBreakerAreNotFailing(t *testing.T) {
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
func TestReview2AutomaticBudgetAfterARestart(t *testing.T) {
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

// README, status key fields: "`fetched_at`, `expires_at`, `renew_at`: when the token was
// requested, expires, and will be renewed". A key read through a role with
// min_remaining_ttl=29m is renewed once less than 29 minutes are left (isDue), but status
// reports renew_at from the spread point alone, up to 20 minutes later than the renewal.
// (The README and the field's help also still say "30 minutes before expiry", which the
// spread made untrue.)
func TestReview2StatusRenewAtIgnoresMinRemainingTTL(t *testing.T) {
	env := newTestEnv(t)
	env.spreadRenewals = true
	env.b = env.newBackend()
	acct := spreadAccount(t, 10*time.Minute)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false})
	env.mustWrite("roles/strict", map[string]any{"type": "SELLER", "account_id": acct, "min_remaining_ttl": "29m"})
	env.readToken("strict")
	resp := env.statusList(map[string]any{"account_id": acct})
	keys, _ := resp.Data["keys"].([]map[string]any)
	if len(keys) != 1 {
		t.Fatalf("status keys: %v", resp.Data["keys"])
	}
	parse := func(field string) time.Time {
		switch v := keys[0][field].(type) {
		case time.Time:
			return v
		case string:
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return at
		}
		t.Fatalf("%s: %T %v", field, keys[0][field], keys[0][field])
		return time.Time{}
	}
	expires, renew := parse("expires_at"), parse("renew_at")
	if latest := expires.Add(-29 * time.Minute); renew.After(latest) {
		t.Errorf("renew_at %s is %s before expiry, but the key renews with 29 minutes left (min_remaining_ttl)", renew, expires.Sub(renew))
	}
}

// appReadFailingStorage fails reads of the application's request counts while failing is set.
type appReadFailingStorage struct {
	logical.Storage
	failing atomic.Bool
}

func (s *appReadFailingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if s.failing.Load() && strings.HasPrefix(key, appStoragePrefix) {
		return nil, errors.New("storage unavailable")
	}
	return s.Storage.Get(ctx, key)
}

// README, max_application_requests_per_hour: "kept in storage across restarts" (issue 18:
// "kept across restarts and crash loops"). When reading the stored counts after a restart
// fails once, request() goes on "counting from now" (a choice the log states), but then
// record() overwrites the stored counts with the in-memory ones: the requests made before
// the restart are gone from storage for good, and once storage answers again the budget is
// judged without them. Here a budget of 5 was spent before the restart; after one failed
// read of the counts, every new seller is sent to Naver again.
func TestReview2FailedCountsReadErasesTheStoredCounts(t *testing.T) {
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
func TestReview2ApplicationBudgetIsNotASlidingHour(t *testing.T) {
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
func TestReview2FailedVerificationsOpenTheBreakerForTheLiveConfig(t *testing.T) {
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

// Issue 18: "A few minutes of outage must not lock a seller out for the rest of the hour."
// The breaker protects an application of many sellers, but with a few, the first read's
// retries, reads every 30 s and the breaker's probes through a 3-minute storm of 503s spent
// a key's budget in minutes: after Naver recovered, a seller was refused by its own budget
// for the rest of the hour. Each must be served within minutes of the recovery.
func TestReview2FewSellersLockedOutAfterAShortStorm(t *testing.T) {
	env := newTestEnv(t) // the emulator's penalty is on
	env.configure()
	const sellers = 2
	for i := range sellers {
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_few%d", i)})
	}
	// Every seller's app reads every 30 s; Vault runs the periodic function every minute.
	step := func(i int, read func(seller int)) {
		for seller := range sellers {
			read(seller)
		}
		if i%2 == 0 {
			env.periodic(context.Background())
		}
		env.clock.Advance(30 * time.Second)
	}
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "0", Count: 1 << 20})
	for i := range 6 { // 3 minutes
		step(i, func(seller int) { env.read(fmt.Sprintf("token/s%d", seller)) })
	}
	env.naver.ClearFaults() // Naver recovers

	served := map[int]time.Duration{}
	var refusals []string
	for i := 0; i <= 20 && len(served) < sellers; i++ { // 10 minutes
		elapsed := time.Duration(i) * 30 * time.Second
		step(i, func(seller int) {
			if _, ok := served[seller]; ok {
				return
			}
			resp, err := env.read(fmt.Sprintf("token/s%d", seller))
			switch text := errorText(resp, err); {
			case text == "":
				served[seller] = elapsed
				env.tokens = append(env.tokens, resp.Data["access_token"].(string))
			case strings.Contains(text, fieldMaxRequestsHour) && len(refusals) < 3:
				refusals = append(refusals, text)
			}
		})
	}
	for i := range sellers {
		if at, ok := served[i]; !ok || at > 5*time.Minute {
			t.Errorf("seller %d served %v after Naver recovered (0 and not served: not within 10 minutes); want within 5 minutes", i, at)
		}
	}
	if len(refusals) > 0 {
		t.Errorf("sellers refused by their own budget after the storm: %q", refusals)
	}
	for i := range sellers {
		if n := env.requestsFor("SELLER", fmt.Sprintf("ncp_few%d", i)); 2*n > defaultMaxRequestsHour {
			t.Errorf("seller %d sent %d requests, more than half its hourly budget of %d", i, n, defaultMaxRequestsHour)
		}
	}
	env.assertCompliant()
	if st := env.naver.Stats(); len(st.Penalties) > 0 {
		t.Errorf("the application was penalised: %+v", st.Penalties)
	}
}
