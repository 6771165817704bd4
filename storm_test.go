package navercommerce

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// stormRun is what happened to each seller through a Naver storm of 503s.
type stormRun struct {
	duringStorm []int           // requests each seller's key sent during the storm
	maxPerHour  []int           // the most each key sent in any sliding hour
	servedAfter []time.Duration // when each key first held a token fetched after Naver recovered; -1: never
	// wronglyFailed are reads that failed while the key's cached token had life to serve.
	wronglyFailed []string
	// budgetRefused are reads refused by the key's hourly budget.
	budgetRefused []string
	failedReads   int
}

// readsThroughStorm has every seller's app read its token every 30 s (and Vault run its
// periodic function every minute) through a storm of 503s at the emulator, for length, and
// for follow after it. With inWindow, each seller's token was fetched before, and the storm
// begins as it enters Naver's 30-minute window; otherwise the storm meets the sellers'
// first reads.
func readsThroughStorm(t *testing.T, sellers int, inWindow bool, length, follow time.Duration) stormRun {
	t.Helper()
	env := newTestEnv(t) // the emulator's penalty is on
	env.configure()      // the default config
	accounts := make([]string, sellers)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("ncp_storm%d", i)
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": accounts[i]})
	}
	if inWindow {
		for i := range accounts {
			env.readToken(fmt.Sprintf("s%d", i))
		}
		env.clock.Advance(tokenLifetime - refreshWindow)
	}
	// Retry-After: 0 only keeps the client's retries from sleeping in real time; the attempts
	// are those of a real storm.
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "0", Count: 1 << 30})
	start := env.clock.Now()
	recovery := start.Add(length)
	run := stormRun{duringStorm: make([]int, sellers), maxPerHour: make([]int, sellers), servedAfter: make([]time.Duration, sellers)}
	history := make([][]stormSample, sellers)
	before := make([]int, sellers)
	for i, acct := range accounts {
		before[i] = env.requestsFor("SELLER", acct)
		run.servedAfter[i] = -1
	}
	recovered := false
	for step := 0; env.clock.Now().Before(recovery.Add(follow)); step++ {
		now := env.clock.Now()
		if !recovered && !now.Before(recovery) {
			env.naver.ClearFaults()
			recovered = true
			for i, acct := range accounts {
				run.duringStorm[i] = env.requestsFor("SELLER", acct) - before[i]
			}
		}
		for i, acct := range accounts {
			key := tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: acct}
			cached := env.cachedToken("SELLER", acct)
			resp, err := env.read(fmt.Sprintf("token/s%d", i))
			if text := errorText(resp, err); text != "" {
				run.failedReads++
				if cached != nil && cached.ExpiresAt.Sub(now) >= minServableLife+time.Second {
					run.wronglyFailed = append(run.wronglyFailed, fmt.Sprintf("%s at +%v with %v left: %s", acct, now.Sub(start), cached.ExpiresAt.Sub(now), text))
				}
				if strings.Contains(text, fieldMaxRequestsHour) {
					run.budgetRefused = append(run.budgetRefused, fmt.Sprintf("%s at +%v: %s", acct, now.Sub(start), text))
				}
			} else {
				env.tokens = append(env.tokens, resp.Data["access_token"].(string))
			}
			waitForFlights(env.b, key)
		}
		if step%2 == 0 {
			env.periodic(context.Background())
			for _, acct := range accounts {
				waitForFlights(env.b, tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: acct})
			}
		}
		for i, acct := range accounts {
			n := env.requestsFor("SELLER", acct) - before[i] // the first token was fetched hours before
			history[i] = append(history[i], stormSample{now, n})
			for _, s := range history[i] {
				if now.Sub(s.at) < time.Hour {
					// s.count was sent by the end of s's step: the hour since holds n minus what
					// was sent before it (the previous sample's count).
					run.maxPerHour[i] = max(run.maxPerHour[i], n-countBefore(history[i], s.at))
					break
				}
			}
			if tok := env.cachedToken("SELLER", acct); recovered && run.servedAfter[i] < 0 && tok != nil && !tok.FetchedAt.Before(recovery) {
				run.servedAfter[i] = now.Sub(recovery)
			}
		}
		env.clock.Advance(30 * time.Second)
	}
	env.assertCompliant()
	if st := env.naver.Stats(); len(st.Penalties) > 0 {
		t.Errorf("the application was penalised: %+v", st.Penalties)
	}
	return run
}

// stormSample is a key's request count at the end of one step.
type stormSample struct {
	at    time.Time
	count int
}

// countBefore is the count of the last sample before at (0 if none).
func countBefore(history []stormSample, at time.Time) int {
	n := 0
	for _, s := range history {
		if !s.at.Before(at) {
			break
		}
		n = s.count
	}
	return n
}

// A storm of Naver's must cost a key only part of its hourly budget and never lock it out
// for the rest of the hour: with the default config, one and two sellers, a storm on the
// sellers' first reads or as their tokens enter Naver's window, every seller is served
// within a stated bound of Naver's recovery, no key goes over its budget or is refused by
// it, no read fails that the cached token could serve, and Naver penalises nothing.
func TestStormSpendsAKeysBudgetSlowly(t *testing.T) {
	budget := defaultMaxRequestsHour
	// After a short storm a key still has most of its burst or its next paced attempt is
	// close; after a long one, it asks once per pacing interval, and a read every 30 s
	// finds the slot.
	const shortBound, longBound = 5 * time.Minute, 7*time.Minute + 30*time.Second
	tests := []struct {
		length   time.Duration
		inWindow bool
		bound    time.Duration
	}{
		{3 * time.Minute, false, shortBound},
		{3 * time.Minute, true, shortBound},
		{15 * time.Minute, false, longBound},
		{15 * time.Minute, true, longBound},
		{time.Hour, false, longBound},
		{time.Hour, true, longBound},
	}
	for _, tt := range tests {
		for _, sellers := range []int{1, 2} {
			where := "first reads"
			if tt.inWindow {
				where = "renewal window"
			}
			t.Run(fmt.Sprintf("%v storm on %s, %d sellers", tt.length, where, sellers), func(t *testing.T) {
				run := readsThroughStorm(t, sellers, tt.inWindow, tt.length, 15*time.Minute)
				t.Logf("requests during the storm %v; most in an hour %v; served after recovery %v; failed reads %d",
					run.duringStorm, run.maxPerHour, run.servedAfter, run.failedReads)
				for i := range sellers {
					if run.maxPerHour[i] > budget {
						t.Errorf("seller %d sent %d requests in an hour, over its budget of %d", i, run.maxPerHour[i], budget)
					}
					if tt.length <= 3*time.Minute && 2*run.duringStorm[i] > budget {
						t.Errorf("seller %d sent %d requests during a %v storm: more than half its hourly budget of %d", i, run.duringStorm[i], tt.length, budget)
					}
					if run.servedAfter[i] < 0 || run.servedAfter[i] > tt.bound {
						t.Errorf("seller %d served %v after Naver recovered (-1: not within 15 minutes); want within %v", i, run.servedAfter[i], tt.bound)
					}
				}
				if len(run.budgetRefused) > 0 {
					t.Errorf("%d reads refused by the key's hourly budget, the first: %s", len(run.budgetRefused), run.budgetRefused[0])
				}
				if len(run.wronglyFailed) > 0 {
					t.Errorf("%d reads failed that the cached token could serve, the first: %s", len(run.wronglyFailed), run.wronglyFailed[0])
				}
				if tt.inWindow && tt.length < refreshWindow && run.failedReads > 0 {
					t.Errorf("%d reads failed in a storm shorter than the token's last 30 minutes", run.failedReads)
				}
			})
		}
	}
}

// failingAccount answers 503 to every token request for one account, as Naver failing for
// one seller only; other requests pass.
type failingAccount struct {
	account string
	clock   *fakeClock
	mu      sync.Mutex
	sent    []time.Time // when each request for the account was sent
}

func (f *failingAccount) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if strings.Contains(string(b), "account_id="+f.account) {
			f.mu.Lock()
			f.sent = append(f.sent, f.clock.Now())
			f.mu.Unlock()
			return &http.Response{
				StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Request: req,
				Header: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"0"}},
				Body:   io.NopCloser(strings.NewReader(`{"code":"GW.SERVICE_UNAVAILABLE","message":"down for one seller","timestamp":"2026-11-24T12:00:00Z"}`)),
			}, nil
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Keys may skip their pace once Naver is back for the application, but only once per
// recovery: a seller Naver keeps failing for, while other sellers are served (and so close
// the breaker again and again), still keeps to its pace and its budget.
func TestOneFailingSellerKeepsToItsPaceWhileOthersAreServed(t *testing.T) {
	env := newTestEnv(t)
	bad := &failingAccount{account: "ncp_bad", clock: env.clock}
	env.useTransport(bad)
	env.configure()
	env.mustWrite("roles/bad", map[string]any{"type": "SELLER", "account_id": "ncp_bad"})
	for step := 0; step < 240; step++ { // 2 hours, a read every 30 s
		now := env.clock.Now()
		if step%30 == 15 { // a new seller every 15 minutes, served at once: the breaker closes
			role := fmt.Sprintf("good%d", step)
			env.mustWrite("roles/"+role, map[string]any{"type": "SELLER", "account_id": "ncp_" + role})
			env.readToken(role)
		}
		resp, err := env.read("token/bad")
		if text := errorText(resp, err); strings.Contains(text, fieldMaxRequestsHour) && !strings.Contains(text, "spread over the hour") {
			t.Fatalf("the failing seller was refused by its budget at %v (requests at %v): %s", now.Format("15:04:05"), bad.times(), text)
		}
		waitForFlights(env.b, tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: "ncp_bad"})
		if step%2 == 0 {
			env.periodic(context.Background())
		}
		env.clock.Advance(30 * time.Second)
	}
	bad.mu.Lock()
	sent := bad.sent
	bad.mu.Unlock()
	for i, at := range sent {
		n := 0
		for _, b := range sent[i:] {
			if b.Sub(at) < time.Hour {
				n++
			}
		}
		if n > defaultMaxRequestsHour {
			t.Fatalf("the failing seller sent %d requests in the hour from request %d, over its budget of %d", n, i, defaultMaxRequestsHour)
		}
	}
	t.Logf("the failing seller sent %d requests in 2 hours: %v", len(sent), bad.times())
}

func (f *failingAccount) times() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, t := range f.sent {
		out = append(out, t.Format("15:04:05"))
	}
	return out
}

// max_retries is the caller's: a read that begins with Naver healthy makes all its retries
// (up to 5), not only the pace's burst; the pace starts with the key's next request.
func TestARetriedBlipMakesEveryRetry(t *testing.T) {
	for _, retries := range []int{2, 3, 5} {
		env := newTestEnv(t)
		env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
			"verify_connection": false, "max_retries": retries})
		env.mustWrite("roles/shop", map[string]any{"type": "SELLER", "account_id": testAccount})
		env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusInternalServerError, Count: retries})
		resp, err := env.read("token/shop")
		if msg := errorText(resp, err); msg != "" {
			t.Errorf("max_retries=%d, %d failures: %s", retries, retries, msg)
			continue
		}
		env.tokens = append(env.tokens, resp.Data["access_token"].(string))
		if n := env.requestsFor("SELLER", testAccount); n != retries+1 {
			t.Errorf("max_retries=%d: %d requests, want %d", retries, n, retries+1)
		}
	}
}

// Issue 18: "A few minutes of outage must not lock a seller out for the rest of the hour."
// The breaker protects an application of many sellers, but with a few, the first read's
// retries, reads every 30 s and the breaker's probes through a 3-minute storm of 503s spent
// a key's budget in minutes: after Naver recovered, a seller was refused by its own budget
// for the rest of the hour. Each must be served within minutes of the recovery.
func TestNoSellerLockedOutAfterAShortStorm(t *testing.T) {
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
