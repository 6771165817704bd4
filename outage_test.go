package navercommerce

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// naverOutage answers every request to Naver with 503 while the fake clock is inside
// [from, until), as a Naver outage would; otherwise it passes the request on. Its 503 says
// "Retry-After: 0" only so that the client's retries do not sleep in real time: the
// attempts, and so the budget they spend, are those of a real outage.
type naverOutage struct {
	clock       *fakeClock
	from, until time.Time
}

func (o *naverOutage) RoundTrip(req *http.Request) (*http.Response, error) {
	if now := o.clock.Now(); !now.Before(o.from) && now.Before(o.until) {
		if req.Body != nil {
			_, _ = io.Copy(io.Discard, req.Body)
			req.Body.Close()
		}
		return &http.Response{
			StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Request: req,
			Header: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"0"}},
			Body:   io.NopCloser(strings.NewReader(`{"code":"GW.SERVICE_UNAVAILABLE","message":"outage","timestamp":"2026-11-24T12:00:00Z"}`)),
		}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// readsThroughOutage has an app read the role's token every 30 s (and Vault run its
// periodic function every minute) from the first token on, through a Naver outage of
// length that begins start after that token was fetched, until 3 hours after the outage.
// It reports, relative to the outage's start, when reads first carried a warning and
// first and last failed (-1 when never), and the statuses of the failures.
func readsThroughOutage(t *testing.T, config map[string]any, start, length time.Duration) outageResult {
	t.Helper()
	env := newTestEnv(t)
	out := &naverOutage{clock: env.clock}
	env.useTransport(out)
	config["client_id"], config["client_secret"], config["base_url"] = testClientID, testSecret, env.naver.URL
	env.mustWrite("config", config)
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	t0 := env.clock.Now()
	env.readToken("store")
	out.from, out.until = t0.Add(start), t0.Add(start+length)
	r := outageResult{firstWarning: -1, firstFailure: -1, lastFailure: -1, statuses: map[int]int{}}
	for i := 0; env.clock.Now().Before(out.until.Add(3 * time.Hour)); i++ {
		resp, err := env.read("token/store")
		at := env.clock.Now().Sub(out.from)
		switch {
		case errorText(resp, err) != "":
			if r.firstFailure < 0 {
				r.firstFailure = at
			}
			r.lastFailure = at
			r.statuses[httpStatus(resp, err)]++
		case len(resp.Warnings) > 0 && r.firstWarning < 0:
			r.firstWarning = at
		}
		if i%2 == 0 {
			env.periodic(context.Background())
		}
		waitForFlights(env.b, tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount})
		env.clock.Advance(30 * time.Second)
	}
	return r
}

type outageResult struct {
	firstWarning, firstFailure, lastFailure time.Duration
	statuses                                map[int]int
}

// TestOutageAsDocumented holds README's "When Naver is down" to what the plugin does, with
// the default config unless named, for one key read every 30 s: when reads fail, relative
// to the outage's start, and whether they carried a warning before. When the behaviour
// changes, change the README with it.
func TestOutageAsDocumented(t *testing.T) {
	const never = time.Duration(-1)
	tests := []struct {
		name          string
		config        map[string]any
		start, length time.Duration // start: after the token was fetched
		// relative to the outage's start
		wantFirstFailure, wantLastFailure time.Duration
		// wantWarnings: "yes" (reads carried a warning before any failed), "no", or "" when
		// either is right (a renewal that succeeds late may or may not warn first).
		wantWarnings string
	}{
		// The token has 2 hours left: nothing asks Naver, so nothing notices.
		{"5 minutes, token has 2h left", nil, time.Hour, 5 * time.Minute, never, never, "no"},
		{"1 hour, token has 2h left", nil, time.Hour, time.Hour, never, never, "no"},
		// The outage begins as the token enters its last 30 minutes: the old token is served
		// with a warning. The failed attempts keep to the pace (3 at once, then one every
		// 6m40s), so an outage that ends before the token does costs no failed read, and a
		// longer one fails reads from the token's expiry until the key's next paced request
		// after Naver is back: at most 6m40s (and a read's interval) later.
		{"5 minutes, from the renewal window", nil, 150 * time.Minute, 5 * time.Minute, never, never, "yes"},
		{"15 minutes, from the renewal window", nil, 150 * time.Minute, 15 * time.Minute, never, never, "yes"},
		{"1 hour, from the renewal window", nil, 150 * time.Minute, time.Hour, 30 * time.Minute, time.Hour, "yes"},
		// A day: reads fail from the token's expiry until at most 7 minutes after Naver is back.
		{"1 day, token has 2h left", nil, time.Hour, 24 * time.Hour, 2 * time.Hour, 24*time.Hour + 3*time.Minute + 30*time.Second, "yes"},
		{"1 day, from the renewal window", nil, 150 * time.Minute, 24 * time.Hour, 30 * time.Minute, 24 * time.Hour, "yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := map[string]any{}
			for k, v := range tt.config {
				config[k] = v
			}
			got := readsThroughOutage(t, config, tt.start, tt.length)
			if got.firstFailure != tt.wantFirstFailure || got.lastFailure != tt.wantLastFailure {
				t.Errorf("reads failed from %v to %v (statuses %v); want %v to %v",
					got.firstFailure, got.lastFailure, got.statuses, tt.wantFirstFailure, tt.wantLastFailure)
			}
			warned := got.firstWarning != never && (got.firstFailure == never || got.firstWarning < got.firstFailure)
			if tt.wantWarnings != "" && warned != (tt.wantWarnings == "yes") {
				t.Errorf("first warning at %v, first failure at %v; want warnings before any failure: %s", got.firstWarning, got.firstFailure, tt.wantWarnings)
			}
		})
	}
}
