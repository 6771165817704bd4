package navercommercetest_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// freshSeller returns the answer to a compliant SELLER request for an
// account nobody asked for yet, so the request itself can be neither
// needless nor concurrent.
func freshSeller(t *testing.T, srv *navercommercetest.Server, clock *fakeClock) response {
	t.Helper()
	return postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), "ncp_"+rand.Text()))
}

// wantPenalised checks that r is the penalty's 429 naming reason.
func wantPenalised(t *testing.T, r response, reason string) {
	t.Helper()
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.err.Code != "GW.RATE_LIMIT" || !strings.Contains(r.err.Message, reason) || !strings.Contains(r.err.Message, "one per hour") {
		t.Fatalf("penalty answer %s, want GW.RATE_LIMIT naming %q", r.body, reason)
	}
	if ra := r.header.Get("Retry-After"); ra != "" {
		t.Fatalf("Retry-After %q on a penalty 429; Naver documents none", ra)
	}
	checkErrorBody(t, r)
}

// TestPenaltyTriggers provokes each offence Naver penalises and checks that
// the offending request still gets its own answer (or, over the budget, the
// penalty) and that the application's next request is refused with the
// reason, recorded in Stats.
func TestPenaltyTriggers(t *testing.T) {
	cases := []struct {
		name    string
		penalty navercommercetest.PenaltyConfig
		// offend sends the offending request(s) and checks their answers.
		offend func(t *testing.T, srv *navercommercetest.Server, clock *fakeClock)
		reason string
	}{
		{name: "needless", reason: "needless token request", offend: func(t *testing.T, srv *navercommercetest.Server, clock *fakeClock) {
			first := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
			clock.Advance(2*time.Hour + 30*time.Minute) // exactly 30m left: Naver returns the same token
			again := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
			wantStatus(t, again, http.StatusOK)
			if again.token.AccessToken != first.token.AccessToken {
				t.Fatal("the needless request did not get the same token back")
			}
		}},
		{name: "account_id with SELF", reason: "account_id with type=SELF", offend: func(t *testing.T, srv *navercommercetest.Server, clock *fakeClock) {
			f := selfForm(t, clientID, secret, clock.Millis())
			f.Set("account_id", sellerID)
			r := postToken(t, srv, f)
			wantStatus(t, r, http.StatusBadRequest)
		}},
		{name: "parameters in query string", reason: "parameters in query string", offend: func(t *testing.T, srv *navercommercetest.Server, clock *fakeClock) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/oauth2/token?"+selfForm(t, clientID, secret, clock.Millis()).Encode(), nil)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			wantStatus(t, do(t, req), http.StatusBadRequest)
		}},
		{name: "concurrent", reason: "concurrent token requests", offend: func(t *testing.T, srv *navercommercetest.Server, clock *fakeClock) {
			srv.InjectFault(navercommercetest.Fault{Count: 2, Delay: time.Minute})
			ctx, cancel := context.WithCancel(context.Background())
			form := selfForm(t, clientID, secret, clock.Millis())
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/oauth2/token", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					if res, err := http.DefaultClient.Do(req); err == nil {
						res.Body.Close()
					}
				})
			}
			waitFor(t, func() bool { return srv.MaxInFlight(clientID, "SELF", "") == 2 })
			cancel()
			wg.Wait()
			waitFor(t, func() bool { return srv.Stats().Keys[clientID+"|SELF|"].InFlight == 0 })
		}},
		{name: "too many", reason: "too many token requests", penalty: navercommercetest.PenaltyConfig{RequestsPerHour: 3},
			offend: func(t *testing.T, srv *navercommercetest.Server, clock *fakeClock) {
				// Every request counts, refused ones included.
				wantStatus(t, postToken(t, srv, selfForm(t, clientID, otherSecret, clock.Millis())), http.StatusForbidden)
				wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)
				clock.Advance(59 * time.Minute)
				wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)
				// The fourth within the hour is over the budget: refused itself.
				wantPenalised(t, freshSeller(t, srv, clock), "too many token requests")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(testStart)
			srv := newTestServer(t, clock, func(c *navercommercetest.Config) { c.Penalty = tc.penalty })
			tc.offend(t, srv, clock)

			wantPenalised(t, freshSeller(t, srv, clock), tc.reason)
			// Another application is not affected.
			wantStatus(t, postToken(t, srv, selfForm(t, "restricted-app", secret, clock.Millis())), http.StatusOK)

			st := srv.Stats()
			p, ok := st.Penalties[clientID]
			if !ok || !p.Active || !strings.Contains(p.Reason, tc.reason) || p.Refused < 1 {
				t.Fatalf("Stats.Penalties[%q] = %+v, %v; want an active penalty for %q", clientID, p, ok, tc.reason)
			}
			if !strings.Contains(st.PenaltyReason, tc.reason) || !st.PenalisedUntil.After(clock.Now()) {
				t.Fatalf("Stats.PenaltyReason %q PenalisedUntil %v", st.PenaltyReason, st.PenalisedUntil)
			}
			if !anyContains(st.Violations, tc.reason) {
				t.Fatalf("violations %q lack %q", st.Violations, tc.reason)
			}
			if _, ok := srv.Penalty("restricted-app"); ok {
				t.Fatal("the other application was penalised")
			}
		})
	}
}

// TestPenaltyAllowanceAndExpiry: during a penalty one request an hour is
// answered normally; the penalty ends after Duration; Reset clears it.
func TestPenaltyAllowanceAndExpiry(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock, func(c *navercommercetest.Config) { c.Penalty.Duration = 3 * time.Hour })
	f := selfForm(t, clientID, secret, clock.Millis())
	f.Set("account_id", sellerID)
	wantStatus(t, postToken(t, srv, f), http.StatusBadRequest) // starts the penalty

	steps := []struct {
		advance time.Duration // from the start of the penalty
		status  int
	}{
		{time.Second, 429},
		{time.Hour - time.Millisecond, 429},
		{time.Hour, 200}, // the hourly allowance
		{time.Hour + time.Millisecond, 429},
		{2*time.Hour - time.Millisecond, 429},
		{2 * time.Hour, 200},
		{3*time.Hour - time.Millisecond, 429},
		{3 * time.Hour, 200}, // over
		{3*time.Hour + time.Millisecond, 200},
	}
	elapsed := time.Duration(0)
	for i, s := range steps {
		clock.Advance(s.advance - elapsed)
		elapsed = s.advance
		if r := freshSeller(t, srv, clock); r.status != s.status {
			t.Fatalf("step %d (+%v): status %d, want %d; body %s", i, s.advance, r.status, s.status, r.body)
		}
	}
	p, ok := srv.Penalty(clientID)
	if !ok || p.Active || p.Refused != 5 || p.Allowed != 2 || !p.Until.Equal(testStart.Add(3*time.Hour)) || !p.Since.Equal(testStart) {
		t.Fatalf("Penalty = %+v, %v", p, ok)
	}
	if st := srv.Stats(); st.PenaltyReason == "" || st.Penalties[clientID].Active {
		t.Fatalf("an ended penalty must stay on record, inactive: %+v", st)
	}
	srv.Reset()
	if st := srv.Stats(); len(st.Penalties) != 0 || st.PenaltyReason != "" || !st.PenalisedUntil.IsZero() {
		t.Fatalf("Reset left the penalty: %+v", st)
	}
}

// TestPenaltyExtendedByOffence: an offence while penalised extends the
// penalty to Duration after it.
func TestPenaltyExtendedByOffence(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	selfWithAccount := func() response {
		f := selfForm(t, clientID, secret, clock.Millis())
		f.Set("account_id", sellerID)
		return postToken(t, srv, f)
	}
	wantStatus(t, selfWithAccount(), http.StatusBadRequest)
	clock.Advance(30 * time.Minute)
	wantStatus(t, selfWithAccount(), http.StatusBadRequest) // its own answer, and the penalty runs to +1h30m
	clock.Advance(40 * time.Minute)
	wantStatus(t, freshSeller(t, srv, clock), http.StatusOK) // +1h10m: the hourly allowance
	clock.Advance(10 * time.Minute)
	wantPenalised(t, freshSeller(t, srv, clock), "account_id with type=SELF") // +1h20m: still penalised
	clock.Advance(10 * time.Minute)
	wantStatus(t, freshSeller(t, srv, clock), http.StatusOK) // +1h30m: over
}

func TestPenaltySettings(t *testing.T) {
	needless := func(t *testing.T, srv *navercommercetest.Server, clock *fakeClock) response {
		t.Helper()
		return postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	}
	t.Run("violations allowed within a sliding hour", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock, func(c *navercommercetest.Config) { c.Penalty.ViolationsAllowed = 2 })
		wantStatus(t, needless(t, srv, clock), http.StatusOK) // the first request is no violation
		wantStatus(t, needless(t, srv, clock), http.StatusOK) // violation 1
		clock.Advance(time.Minute)
		wantStatus(t, needless(t, srv, clock), http.StatusOK) // violation 2
		clock.Advance(59*time.Minute + 30*time.Second)        // violation 1 left the window
		wantStatus(t, needless(t, srv, clock), http.StatusOK) // violation 2 of the hour
		wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)
		wantStatus(t, needless(t, srv, clock), http.StatusOK) // violation 3 of the hour: answered, penalty starts
		wantPenalised(t, freshSeller(t, srv, clock), "3 violations within an hour (2 allowed)")
	})
	t.Run("negative violations allowed: only the budget", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock, func(c *navercommercetest.Config) {
			c.Penalty = navercommercetest.PenaltyConfig{ViolationsAllowed: -1, RequestsPerHour: 5}
		})
		for i := range 5 {
			if r := needless(t, srv, clock); r.status != http.StatusOK {
				t.Fatalf("request %d: %d %s", i, r.status, r.body)
			}
		}
		wantPenalised(t, needless(t, srv, clock), "too many token requests")
	})
	t.Run("disabled", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock, noPenalty)
		for range 70 { // over the default budget too
			wantStatus(t, needless(t, srv, clock), http.StatusOK)
		}
		if st := srv.Stats(); len(st.Penalties) != 0 || len(st.Violations) != 69 {
			t.Fatalf("penalties %v, %d violations", st.Penalties, len(st.Violations))
		}
	})
	t.Run("unlimited budget", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock, func(c *navercommercetest.Config) { c.Penalty.RequestsPerHour = -1 })
		for range 61 {
			wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)
		}
	})
	t.Run("default budget is 60 an hour", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock)
		for range 60 {
			wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)
		}
		wantPenalised(t, freshSeller(t, srv, clock), "sent 61 token requests within an hour (budget 60)")
	})
	t.Run("Retry-After on request", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock, func(c *navercommercetest.Config) {
			c.Penalty = navercommercetest.PenaltyConfig{RetryAfter: true, Duration: 3 * time.Hour}
		})
		wantStatus(t, needless(t, srv, clock), http.StatusOK)
		wantStatus(t, needless(t, srv, clock), http.StatusOK)
		clock.Advance(10*time.Minute + 500*time.Millisecond)
		r := freshSeller(t, srv, clock)
		wantStatus(t, r, http.StatusTooManyRequests)
		// The next allowance, 50 minutes on, comes before the end.
		if got := r.header.Get("Retry-After"); got != "3000" {
			t.Fatalf("Retry-After %q, want 3000", got)
		}
	})
	t.Run("SetPenalty at run time", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock, noPenalty)
		srv.SetPenalty(navercommercetest.PenaltyConfig{})
		if p := srv.PenaltySettings(); p.Disabled || p.RequestsPerHour != 60 || p.Duration != time.Hour || p.ViolationsAllowed != 0 {
			t.Fatalf("PenaltySettings %+v", p)
		}
		wantStatus(t, needless(t, srv, clock), http.StatusOK)
		wantStatus(t, needless(t, srv, clock), http.StatusOK)
		wantPenalised(t, freshSeller(t, srv, clock), "needless")
		srv.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
		wantStatus(t, freshSeller(t, srv, clock), http.StatusOK)
		defer func() {
			if recover() == nil {
				t.Fatal("SetPenalty with a negative duration did not panic")
			}
		}()
		srv.SetPenalty(navercommercetest.PenaltyConfig{Duration: -time.Second})
	})
	t.Run("a queued fault comes before the penalty", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock)
		wantStatus(t, needless(t, srv, clock), http.StatusOK)
		wantStatus(t, needless(t, srv, clock), http.StatusOK)
		srv.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable})
		wantStatus(t, freshSeller(t, srv, clock), http.StatusServiceUnavailable)
		issued := srv.IssuedTokens()
		wantPenalised(t, freshSeller(t, srv, clock), "needless")
		if srv.IssuedTokens() != issued {
			t.Fatal("a refused request minted a token")
		}
	})
	t.Run("unknown client is not penalised", func(t *testing.T) {
		clock := newFakeClock(testStart)
		srv := newTestServer(t, clock, func(c *navercommercetest.Config) { c.Penalty.RequestsPerHour = 1 })
		for range 3 {
			wantStatus(t, postToken(t, srv, selfForm(t, "nobody", secret, clock.Millis())), http.StatusForbidden)
		}
		if st := srv.Stats(); len(st.Penalties) != 0 {
			t.Fatalf("penalties %v", st.Penalties)
		}
	})
}

// TestCompliantClientNeverPenalised runs a client that follows Naver's rules
// for a simulated day over several keys, with default penalty settings: it
// must never be refused, and nothing may be recorded.
func TestCompliantClientNeverPenalised(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	type cached struct {
		token   string
		expires time.Time
	}
	keys := []string{"", sellerID, "ncp_other"}
	cache := make(map[string]cached)
	end := clock.Now().Add(24 * time.Hour)
	for clock.Now().Before(end) {
		for _, account := range keys {
			c := cache[account]
			if c.token != "" && c.expires.Sub(clock.Now()) >= 30*time.Minute {
				continue // Naver would hand back the same token
			}
			form := selfForm(t, clientID, secret, clock.Millis())
			if account != "" {
				form = sellerForm(t, clientID, secret, clock.Millis(), account)
			}
			r := postToken(t, srv, form)
			wantStatus(t, r, http.StatusOK)
			cache[account] = cached{r.token.AccessToken, clock.Now().Add(time.Duration(r.token.ExpiresIn) * time.Second)}
		}
		clock.Advance(time.Minute)
	}
	st := srv.Stats()
	if len(st.Violations) != 0 || len(st.Penalties) != 0 {
		t.Fatalf("a compliant client was recorded: violations %q, penalties %v", st.Violations, st.Penalties)
	}
	// 3-hour tokens renewed with under 30 minutes left: one every 2.5 hours.
	if st.TokenRequests < 3*9 || st.TokenRequests > 3*11 {
		t.Fatalf("%d token requests in a day for 3 keys", st.TokenRequests)
	}
}
