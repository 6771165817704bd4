package navercommercetest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestFaults(t *testing.T) {
	cases := []struct {
		name        string
		fault       navercommercetest.Fault
		status      int
		code        string
		message     string
		retryAfter  string
		body        string // exact raw body
		contentType string // prefix
	}{
		{name: "500 default", fault: navercommercetest.Fault{Status: 500}, status: 500, code: "GW.INTERNAL_SERVER_ERROR"},
		{name: "429 with Retry-After", fault: navercommercetest.Fault{Status: 429, RetryAfter: "7"}, status: 429, code: "GW.RATE_LIMIT", retryAfter: "7"},
		{name: "503", fault: navercommercetest.Fault{Status: 503, RetryAfter: "Wed, 21 Oct 2026 07:28:00 GMT"}, status: 503, code: "GW.BLOCK", retryAfter: "Wed, 21 Oct 2026 07:28:00 GMT"},
		{name: "504", fault: navercommercetest.Fault{Status: 504}, status: 504, code: "GW.TIMEOUT"},
		{name: "403 custom code", fault: navercommercetest.Fault{Status: 403, Code: "GW.IP_NOT_ALLOWED", Message: "ip not allowed"}, status: 403, code: "GW.IP_NOT_ALLOWED", message: "ip not allowed"},
		{name: "HTML body", fault: navercommercetest.Fault{Status: 502, Body: "<html><body>Bad Gateway</body></html>"}, status: 502, body: "<html><body>Bad Gateway</body></html>", contentType: "text/html"},
		{name: "garbage 200", fault: navercommercetest.Fault{Body: "\x00\x01not json"}, status: 200, body: "\x00\x01not json", contentType: "text/plain"},
		{name: "truncated JSON 200", fault: navercommercetest.Fault{Body: `{"access_token": "abc", "expires_`}, status: 200, body: `{"access_token": "abc", "expires_`, contentType: "application/json"},
		{name: "empty 200", fault: navercommercetest.Fault{Status: 200}, status: 200, body: ""},
		{name: "delayed 500", fault: navercommercetest.Fault{Status: 500, Delay: 50 * time.Millisecond}, status: 500, code: "GW.INTERNAL_SERVER_ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(testStart)
			srv := newTestServer(t, clock)
			srv.InjectFault(tc.fault)
			start := time.Now()
			r := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
			if time.Since(start) < tc.fault.Delay {
				t.Errorf("answered before the fault delay")
			}
			wantStatus(t, r, tc.status)
			if r.header.Get("GNCP-GW-Trace-ID") == "" {
				t.Error("missing trace header")
			}
			if tc.code != "" {
				if r.err.Code != tc.code {
					t.Errorf("code %q, want %q", r.err.Code, tc.code)
				}
				checkErrorBody(t, r)
			}
			if tc.message != "" && r.err.Message != tc.message {
				t.Errorf("message %q, want %q", r.err.Message, tc.message)
			}
			if got := r.header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if tc.code == "" && r.body != tc.body {
				t.Errorf("body %q, want %q", r.body, tc.body)
			}
			if !strings.HasPrefix(r.header.Get("Content-Type"), tc.contentType) {
				t.Errorf("Content-Type %q, want %q", r.header.Get("Content-Type"), tc.contentType)
			}
			if srv.IssuedTokens() != 0 {
				t.Error("a faulted request minted a token")
			}
			// The fault is used up: the next request is answered normally.
			wantStatus(t, postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())), http.StatusOK)
		})
	}
}

func TestFaultQueueOrderAndCount(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	srv.InjectFault(navercommercetest.Fault{Status: 500, Count: 2})
	srv.InjectFault(navercommercetest.Fault{Status: 429})
	// Faults come before validation: even a bad request gets the fault.
	bad := selfForm(t, clientID, otherSecret, clock.Millis())
	for i, want := range []int{500, 500, 429, 403, 200} {
		form := bad
		if want == 200 {
			form = selfForm(t, clientID, secret, clock.Millis())
		}
		if r := postToken(t, srv, form); r.status != want {
			t.Fatalf("request %d: status %d, want %d", i, r.status, want)
		}
	}
	if srv.TokenRequests() != 5 {
		t.Fatalf("TokenRequests = %d", srv.TokenRequests())
	}
}

// TestAimedFaults: a fault aimed at an account or a type answers only the
// token requests of the keys it is aimed at; the others pass it by, are
// answered normally and leave it queued for the key it waits for.
func TestAimedFaults(t *testing.T) {
	const otherSeller = "ncp_other_seller"
	type request struct {
		typ, accountID string // typ SELF or SELLER
		want           int
	}
	cases := []struct {
		name     string
		faults   []navercommercetest.Fault
		requests []request
	}{
		{
			name:   "at an account",
			faults: []navercommercetest.Fault{{Status: 503, AccountID: sellerID}},
			requests: []request{
				{"SELF", "", 200}, {"SELLER", otherSeller, 200}, {"SELLER", sellerID, 503}, {"SELLER", sellerID, 200},
			},
		},
		{
			name:   "at a type",
			faults: []navercommercetest.Fault{{Status: 500, Count: 2, Type: "SELLER"}},
			requests: []request{
				{"SELF", "", 200}, {"SELLER", otherSeller, 500}, {"SELLER", sellerID, 500}, {"SELLER", sellerID, 200},
			},
		},
		{
			name:     "at SELF",
			faults:   []navercommercetest.Fault{{Status: 429, Type: "SELF"}},
			requests: []request{{"SELLER", sellerID, 200}, {"SELF", "", 429}, {"SELF", "", 200}},
		},
		{
			name:   "at an account and its type",
			faults: []navercommercetest.Fault{{Status: 504, AccountID: sellerID, Type: "SELLER"}},
			requests: []request{
				{"SELLER", otherSeller, 200}, {"SELF", "", 200}, {"SELLER", sellerID, 504}, {"SELLER", sellerID, 200},
			},
		},
		{
			// A request takes the oldest fault aimed at it; one aimed elsewhere
			// keeps its place for its own key.
			name: "queue order",
			faults: []navercommercetest.Fault{
				{Status: 503, AccountID: sellerID},
				{Status: 500},
				{Status: 429, AccountID: sellerID},
			},
			requests: []request{
				{"SELF", "", 500}, {"SELF", "", 200}, {"SELLER", sellerID, 503}, {"SELLER", sellerID, 429}, {"SELLER", sellerID, 200},
			},
		},
		{
			name:   "unaimed: whichever key asks first",
			faults: []navercommercetest.Fault{{Status: 503, Count: 2}},
			requests: []request{
				{"SELLER", otherSeller, 503}, {"SELF", "", 503}, {"SELLER", sellerID, 200},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(testStart)
			// A key asks again after its fault: needless for Naver, not the point here.
			srv := newTestServer(t, clock, noPenalty)
			for _, f := range tc.faults {
				srv.InjectFault(f)
			}
			for i, req := range tc.requests {
				form := selfForm(t, clientID, secret, clock.Millis())
				if req.typ == "SELLER" {
					form = sellerForm(t, clientID, secret, clock.Millis(), req.accountID)
				}
				if r := postToken(t, srv, form); r.status != req.want {
					t.Fatalf("request %d (%s %q): status %d, want %d; body %s", i, req.typ, req.accountID, r.status, req.want, r.body)
				}
			}
		})
	}
}

// TestClearFaultsKeepsTokens: ending an outage with ClearFaults drops the
// queued faults and nothing else; every token handed out before still works
// and the key is handed the same token again (Reset would kill them all).
func TestClearFaultsKeepsTokens(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock, noPenalty)
	self := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token.AccessToken
	seller := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)).token.AccessToken
	srv.InjectFault(navercommercetest.Fault{Status: 503, Count: 1000})
	srv.InjectFault(navercommercetest.Fault{Status: 500, AccountID: sellerID})
	wantStatus(t, postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())), http.StatusServiceUnavailable)

	srv.ClearFaults()

	for name, tok := range map[string]string{"SELF": self, "SELLER": seller} {
		if !srv.TokenValid(tok) {
			t.Errorf("the %s token died with the faults", name)
		}
		wantStatus(t, getAccount(t, srv, tok), http.StatusOK)
	}
	if r := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)); r.status != http.StatusOK || r.token.AccessToken != seller {
		t.Fatalf("after ClearFaults the seller key got %d %q, want 200 and its token again", r.status, r.token.AccessToken)
	}
	if got := srv.TokenRequests(); got != 4 {
		t.Fatalf("TokenRequests = %d after ClearFaults, want the 4 sent: counters are kept", got)
	}
	if got := srv.IssuedTokens(); got != 2 {
		t.Fatalf("IssuedTokens = %d, want 2", got)
	}
}

func TestDropConnection(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	srv.InjectFault(navercommercetest.Fault{DropConnection: true})
	form := selfForm(t, clientID, secret, clock.Millis())
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// A fresh transport, so the failed connection is not retried on
	// another pooled one.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("want a transport error, got status %d", res.StatusCode)
	}
	if srv.TokenRequests() != 1 || srv.IssuedTokens() != 0 {
		t.Fatalf("requests %d issued %d", srv.TokenRequests(), srv.IssuedTokens())
	}
	wantStatus(t, postToken(t, srv, form), http.StatusOK)
}

func TestDelayHonoursClientCancellation(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	srv.InjectFault(navercommercetest.Fault{Status: 500, Delay: time.Minute})
	form := selfForm(t, clientID, secret, clock.Millis())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	// The handler must notice and leave; in-flight drops back to zero.
	waitFor(t, func() bool { return srv.Stats().Keys[clientID+"|SELF|"].InFlight == 0 })
	if time.Since(start) > 10*time.Second {
		t.Fatal("handler kept sleeping after the client left")
	}
}

// TestCloseAbortsHolds: Close does not wait for requests held by a fault
// delay or the latency, and they get no answer.
func TestCloseAbortsHolds(t *testing.T) {
	for name, hold := range map[string]func(*navercommercetest.Server){
		"fault delay": func(s *navercommercetest.Server) { s.InjectFault(navercommercetest.Fault{Delay: time.Hour}) },
		"latency":     func(s *navercommercetest.Server) { s.SetLatency(time.Hour, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock(testStart)
			srv := navercommercetest.NewServer(navercommercetest.Config{
				Applications: []navercommercetest.Application{{ClientID: clientID, ClientSecret: secret}},
				Now:          clock.Now,
			})
			hold(srv)
			req := tokenRequest(srv, selfForm(t, clientID, secret, clock.Millis()))
			done := make(chan error, 1)
			go func() {
				_, err := send(req)
				done <- err
			}()
			waitFor(t, func() bool { return srv.MaxInFlight(clientID, "SELF", "") == 1 })
			closed := make(chan struct{})
			go func() { srv.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("Close waited for the held request")
			}
			if err := <-done; err == nil {
				t.Fatal("the held request was answered")
			}
		})
	}
}

// TestMaxInFlight holds concurrent requests for one key in a delay fault and
// checks the maximum and the recorded violation; sequential requests for the
// same key keep the maximum at 1.
func TestMaxInFlight(t *testing.T) {
	clock := newFakeClock(testStart)
	// It asks needlessly and concurrently on purpose.
	srv := newTestServer(t, clock, noPenalty)

	for range 3 {
		wantStatus(t, postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)), http.StatusOK)
	}
	if got := srv.MaxInFlight(clientID, "SELLER", sellerID); got != 1 {
		t.Fatalf("sequential MaxInFlight = %d", got)
	}
	if anyContains(srv.Violations(), "concurrent") {
		t.Fatal("sequential requests recorded as concurrent")
	}

	// Delay-only faults hold requests and then answer them normally.
	const n = 3
	srv.InjectFault(navercommercetest.Fault{Count: n, Delay: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	form := selfForm(t, clientID, secret, clock.Millis())
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		})
	}
	waitFor(t, func() bool { return srv.MaxInFlight(clientID, "SELF", "") == n })
	cancel()
	wg.Wait()
	if got := srv.MaxInFlight(clientID, "SELF", ""); got != n {
		t.Fatalf("MaxInFlight = %d, want %d", got, n)
	}
	if !anyContains(srv.Violations(), "concurrent token requests") {
		t.Fatalf("violations %q lack the concurrency violation", srv.Violations())
	}
	if got := srv.MaxInFlight(clientID, "SELLER", sellerID); got != 1 {
		t.Fatalf("another key's MaxInFlight changed to %d", got)
	}
}

func TestDelayOnlyFaultAnswersNormally(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	srv.InjectFault(navercommercetest.Fault{Delay: 20 * time.Millisecond})
	start := time.Now()
	r := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	wantStatus(t, r, http.StatusOK)
	if time.Since(start) < 20*time.Millisecond || !srv.TokenValid(r.token.AccessToken) {
		t.Fatal("delay-only fault did not delay then answer normally")
	}
}

func TestInjectFaultRejectsNoOps(t *testing.T) {
	e := navercommercetest.New(navercommercetest.Config{})
	for _, f := range []navercommercetest.Fault{
		{}, {Count: -1, Status: 500}, {Status: 99}, {Status: 600}, {Delay: -time.Second},
		{Status: 500, Type: "seller"}, {Status: 500, Type: "PARTNER"}, {Status: 500, Type: "SELF", AccountID: sellerID},
		{AccountID: sellerID},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("InjectFault(%+v) did not panic", f)
				}
			}()
			e.InjectFault(f)
		}()
	}
}

func TestReset(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	form := selfForm(t, clientID, secret, clock.Millis())
	tok := postToken(t, srv, form).token.AccessToken
	form.Set("account_id", "x")
	postToken(t, srv, form)
	srv.InjectFault(navercommercetest.Fault{Status: 500})
	srv.Reset()
	if srv.TokenRequests() != 0 || srv.IssuedTokens() != 0 || len(srv.Violations()) != 0 ||
		srv.TokenRequestsFor(clientID, "SELF", "") != 0 || srv.MaxInFlight(clientID, "SELF", "") != 0 || srv.TokenValid(tok) {
		t.Fatalf("Reset left state: %+v", srv.Stats())
	}
	// The fault is gone too.
	wantStatus(t, postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())), http.StatusOK)
}

// waitFor polls cond for up to 10 seconds; it is for conditions reached by
// real goroutines, never for the fake clock.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
