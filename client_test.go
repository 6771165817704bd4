package navercommerce

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestDecodeTokenResponse(t *testing.T) {
	sent := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, body string
		wantErr    string
		wantType   string
	}{
		{"naver", `{"access_token":"abc","expires_in":10800,"token_type":"Bearer"}`, "", "Bearer"},
		{"lower-case bearer", `{"access_token":"abc","expires_in":10800,"token_type":"bearer"}`, "", "Bearer"},
		{"no token_type", `{"access_token":"abc","expires_in":10800}`, "", "Bearer"},
		{"empty", ``, "not the expected JSON (empty body)", ""},
		{"html", `<html>gateway</html>`, "HTML", ""},
		{"truncated", `{"access_token":"abc","expi`, "not the expected JSON", ""},
		{"no access_token", `{"expires_in":10800,"token_type":"Bearer"}`, "no access_token", ""},
		{"token with space", `{"access_token":"a b","expires_in":10800}`, "characters", ""},
		{"expires_in zero", `{"access_token":"abc","expires_in":0}`, "expires_in", ""},
		{"expires_in negative", `{"access_token":"abc","expires_in":-5}`, "expires_in", ""},
		{"expires_in over a day", `{"access_token":"abc","expires_in":86401}`, "expires_in", ""},
		{"expires_in string", `{"access_token":"abc","expires_in":"10800"}`, "expires_in", ""},
		{"expires_in fraction", `{"access_token":"abc","expires_in":10800.5}`, "expires_in", ""},
		{"expires_in missing", `{"access_token":"abc"}`, "expires_in", ""},
		{"other token type", `{"access_token":"abc","expires_in":10,"token_type":"MAC"}`, "token_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := decodeTokenResponse([]byte(tt.body), sent, sent)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != tt.wantType || tok.AccessToken != "abc" || !tok.ExpiresAt.Equal(sent.Add(3*time.Hour)) {
				t.Errorf("decoded %+v", tok)
			}
		})
	}
}

// Faults at Naver, through the whole backend. Retries wait in real time (a few hundred ms).
func TestUpstreamFaults(t *testing.T) {
	tests := []struct {
		name         string
		maxRetries   int
		timeout      string
		fault        navercommercetest.Fault
		wantStatus   int // 200: the read succeeds
		wantRequests int
		wantInError  []string
		minElapsed   time.Duration
		maxElapsed   time.Duration
	}{
		{name: "one 500 then success", maxRetries: 2, fault: navercommercetest.Fault{Status: 500}, wantStatus: 200, wantRequests: 2},
		{name: "dropped connection then success", maxRetries: 2, fault: navercommercetest.Fault{DropConnection: true}, wantStatus: 200, wantRequests: 2},
		{name: "persistent 500", maxRetries: 2, fault: navercommercetest.Fault{Status: 500, Count: 10, Code: "GW.INTERNAL_SERVER_ERROR", Message: "boom"},
			wantStatus: 502, wantRequests: 3, wantInError: []string{"HTTP 500", "GW.INTERNAL_SERVER_ERROR", "boom", "trace ID", `role "store"`, testAccount}},
		{name: "no retries configured", maxRetries: 0, fault: navercommercetest.Fault{Status: 503, Count: 10}, wantStatus: 502, wantRequests: 1},
		{name: "403 is not retried", maxRetries: 2, fault: navercommercetest.Fault{Status: 403, Code: "GW.AUTHN", Message: "bad sign"},
			wantStatus: 400, wantRequests: 1, wantInError: []string{"HTTP 403", "GW.AUTHN", "clock"}},
		{name: "400 is not retried", maxRetries: 2, fault: navercommercetest.Fault{Status: 400}, wantStatus: 400, wantRequests: 1},
		{name: "ip not allowed", maxRetries: 2, fault: navercommercetest.Fault{Status: 403, Code: "GW.IP_NOT_ALLOWED", Message: "ip"},
			wantStatus: 400, wantRequests: 1, wantInError: []string{"GW.IP_NOT_ALLOWED", "proxy_url"}},
		{name: "429 honours Retry-After", maxRetries: 2, fault: navercommercetest.Fault{Status: 429, RetryAfter: "1"},
			wantStatus: 200, wantRequests: 2, minElapsed: time.Second},
		{name: "429 Retry-After beyond the timeout", maxRetries: 2, timeout: "2s", fault: navercommercetest.Fault{Status: 429, RetryAfter: "30", Count: 5},
			wantStatus: 502, wantRequests: 1, wantInError: []string{"HTTP 429", "retry after 30s", "rate limiting"}, maxElapsed: time.Second},
		{name: "stalled upstream is cut by request_timeout", maxRetries: 2, timeout: "1s", fault: navercommercetest.Fault{Delay: 10 * time.Second, Count: 5},
			wantStatus: 502, wantInError: []string{"did not answer", "request_timeout"}, minElapsed: time.Second, maxElapsed: 3 * time.Second},
		{name: "html error page", maxRetries: 0, fault: navercommercetest.Fault{Status: 502, Body: "<html><body>Bad Gateway</body></html>"},
			wantStatus: 502, wantRequests: 1, wantInError: []string{"HTTP 502", "HTML"}},
		{name: "garbage 200", maxRetries: 2, fault: navercommercetest.Fault{Body: "not json"},
			wantStatus: 502, wantRequests: 1, wantInError: []string{"not the expected JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure()
			cfg := map[string]any{"max_retries": tt.maxRetries}
			if tt.timeout != "" {
				cfg["request_timeout"] = tt.timeout
			}
			env.mustWrite("config", cfg)
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
			env.naver.InjectFault(tt.fault)

			start := time.Now()
			resp, err := env.read("token/store")
			elapsed := time.Since(start)
			if got := httpStatus(resp, err); got != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", got, errorText(resp, err), tt.wantStatus)
			}
			msg := errorText(resp, err)
			for _, want := range tt.wantInError {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			assertNoSecrets(t, msg)
			if tt.wantRequests > 0 {
				if n := env.requestsFor("SELLER", testAccount); n != tt.wantRequests {
					t.Errorf("%d requests, want %d", n, tt.wantRequests)
				}
			}
			if elapsed < tt.minElapsed || (tt.maxElapsed > 0 && elapsed > tt.maxElapsed) {
				t.Errorf("took %s, want between %s and %s", elapsed, tt.minElapsed, tt.maxElapsed)
			}
			if tt.wantStatus == 200 {
				if tok := resp.Data["access_token"].(string); !env.naver.TokenValid(tok) {
					t.Error("the token is not valid at the emulator")
				}
			} else if env.cachedToken("SELLER", testAccount) != nil {
				t.Error("a failed request left a cached token")
			}
		})
	}
}

// After a failure, reads share it for a moment instead of each asking Naver again.
func TestFailureBacksOffPerKey(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("config", map[string]any{"max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Status: 429, Count: 1})

	for range 5 {
		resp, err := env.read("token/store")
		if !strings.Contains(errorText(resp, err), "HTTP 429") {
			t.Fatalf("want the 429, got %q", errorText(resp, err))
		}
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Fatalf("reads during the back-off asked Naver: %d requests", n)
	}
	env.clock.Advance(rateLimitBackoff)
	env.readToken("store")
	if n := env.requestsFor("SELLER", testAccount); n != 2 {
		t.Fatalf("after the back-off: %d requests, want 2", n)
	}
}

// When renewing fails, a token that is still valid is better than an error.
func TestFailedRenewalServesValidToken(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("config", map[string]any{"max_retries": 0, "background_refresh": false})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store").Data["access_token"]

	env.clock.Advance(3*time.Hour - 10*time.Minute)
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, Count: 1})
	resp := env.readToken("store")
	if resp.Data["access_token"] != first {
		t.Fatal("did not serve the still-valid token")
	}
	if resp.Secret.TTL != 10*time.Minute {
		t.Errorf("lease %s, want the 10 minutes the token has left", resp.Secret.TTL)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "HTTP 503") {
		t.Errorf("warnings %v, want one naming the failure", resp.Warnings)
	}
	env.clock.Advance(failureBackoff)
	if env.readToken("store").Data["access_token"] == first {
		t.Error("no new token once Naver recovered")
	}
}

func TestRetryBackoff(t *testing.T) {
	for attempt := range 6 {
		for range 50 {
			d := retryBackoff(retryWaitMin, retryWaitMax, attempt, nil)
			if d < retryWaitMin/2 || d > retryWaitMax {
				t.Fatalf("attempt %d: backoff %s outside [%s, %s]", attempt, d, retryWaitMin/2, retryWaitMax)
			}
		}
	}
	resp := &http.Response{Header: http.Header{"Retry-After": {"3"}}}
	if d := retryBackoff(retryWaitMin, retryWaitMax, 0, resp); d != 3*time.Second {
		t.Errorf("Retry-After 3 gave %s", d)
	}
}

// Each refusal gets the hint that fits it: a typo in a seller's account ID is not a matter of
// the client secret or the clock. The refusals are the emulator's own answers where it can
// give them.
func TestRefusalHints(t *testing.T) {
	tests := []struct {
		name      string
		config    map[string]any // written over the working config, without verification
		account   string
		fault     *navercommercetest.Fault
		want      []string
		wantNot   []string
		wantCause string
	}{
		{name: "seller account not authorised (a typo)", account: "ncp_typo",
			want: []string{`account_id "ncp_typo"`, "check the role's account_id", "authorised"}, wantNot: []string{"client_secret", "clock"}},
		{name: "wrong client secret", config: map[string]any{"client_secret": "$2a$04$AAAAAAAAAAAAAAAAAAAAAu"}, account: testAccount,
			want: []string{"client_secret_sign is invalid", "check client_secret", "re-issuing"}, wantNot: []string{"clock", "account_id"}},
		{name: "unknown client_id", config: map[string]any{"client_id": "noSuchClientId"}, account: testAccount,
			want: []string{"client_id is invalid", "check client_id"}, wantNot: []string{"clock", "account_id", "client_secret"}},
		{name: "clock off", account: testAccount, fault: &navercommercetest.Fault{Status: 403, Code: "GW.AUTHN", Message: "timestamp is out of the allowed range (5 minutes)"},
			want: []string{"timestamp", "check the Vault server's clock"}, wantNot: []string{"account_id", "client_secret"}},
		{name: "refusal that says nothing", account: testAccount, fault: &navercommercetest.Fault{Status: 401, Code: "GW.AUTHN", Message: "unauthorized"},
			want: []string{"client_id and client_secret", "clock", "account_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnvWithApp(t, navercommercetest.Application{ClientID: testClientID, ClientSecret: testSecret, AccountIDs: []string{testAccount}})
			env.configure()
			cfg := map[string]any{"max_retries": 0, "verify_connection": false}
			for k, v := range tt.config {
				cfg[k] = v
			}
			env.mustWrite("config", cfg)
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": tt.account})
			if tt.fault != nil {
				env.naver.InjectFault(*tt.fault)
			}
			resp, err := env.read("token/store")
			msg := errorText(resp, err)
			if httpStatus(resp, err) != 400 {
				t.Fatalf("status %d (%s), want 400", httpStatus(resp, err), msg)
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			hint := msg[strings.LastIndex(msg, "; check"):]
			for _, not := range tt.wantNot {
				if strings.Contains(hint, not) {
					t.Errorf("hint %q mentions %q", hint, not)
				}
			}
			assertNoSecrets(t, msg)
		})
	}
}

// expires_in is whole seconds: a handed-back token's is its life truncated (Naver's docs do
// not say; the emulator truncates), so Naver's real expiry can be up to a second after
// receivedAt + expires_in. LatestExpiry is the bound the 30-minute rule is judged by: below
// Naver's expiry, a renewal at the very first second of the window (renewal_spread=0) asks
// while Naver still has 30m0s, a needless request it penalises (seed 482, long shape).
func TestLatestExpiryBoundsATruncatedExpiresIn(t *testing.T) {
	answered := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	naverExpiry := answered.Add(2*time.Hour + 20*time.Minute + 900*time.Millisecond) // 8400.9 s left
	body := `{"access_token":"abc","expires_in":8400,"token_type":"Bearer"}`
	checkExpiryBounds(t, body, answered, naverExpiry)
}

// checkExpiryBounds decodes a token answer received at answered and checks that its
// ExpiresAt is not after Naver's expiry and its LatestExpiry not before it.
func checkExpiryBounds(t *testing.T, body string, answered, naverExpiry time.Time) {
	t.Helper()
	tok, err := decodeTokenResponse([]byte(body), answered, answered)
	if err != nil {
		t.Fatal(err)
	}
	if tok.LatestExpiry.Before(naverExpiry) {
		t.Errorf("LatestExpiry %s is before Naver's expiry %s: a renewal at the window's first second is needless", tok.LatestExpiry.Format(time.RFC3339Nano), naverExpiry.Format(time.RFC3339Nano))
	}
	if tok.ExpiresAt.After(naverExpiry) {
		t.Errorf("ExpiresAt %s is after Naver's expiry %s", tok.ExpiresAt.Format(time.RFC3339Nano), naverExpiry.Format(time.RFC3339Nano))
	}
}

// A JWT's exp is whole seconds (the emulator's is rounded down), so Naver's expiry can be up
// to a second after it. Capping LatestExpiry at exp judged the 30-minute rule up to a second
// early: a read at 18:11:06.08 renewed a token minted at 15:41:06.50 whose exp said 18:41:06,
// while Naver still had 30m0.42s, a needless request it penalises (seed 1024, long shape).
func TestLatestExpiryBoundsAJWTExpInWholeSeconds(t *testing.T) {
	answered := time.Date(2026, 1, 1, 15, 41, 6, 501543000, time.UTC)
	naverExpiry := answered.Add(3 * time.Hour) // 18:41:06.501543
	token := jwtForTest(t, naverExpiry.Unix()) // exp 18:41:06
	body := `{"access_token":"` + token + `","expires_in":10800,"token_type":"Bearer"}`
	checkExpiryBounds(t, body, answered, naverExpiry)
	// The exp still caps both when expires_in claims more (a handed-back token reported
	// with its full 10800 s).
	late := answered.Add(time.Hour)
	tok, err := decodeTokenResponse([]byte(body), late, late)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(naverExpiry.Unix(), 0); !tok.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt %s, want the exp %s", tok.ExpiresAt.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if want := time.Unix(naverExpiry.Unix()+1, 0); !tok.LatestExpiry.Equal(want) {
		t.Errorf("LatestExpiry %s, want the exp + 1s %s", tok.LatestExpiry.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}

func jwtForTest(t *testing.T, exp int64) string {
	t.Helper()
	enc := base64.RawURLEncoding
	claims := fmt.Sprintf(`{"exp":%d,"iat":%d,"jti":"x"}`, exp, exp-10800)
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString([]byte("sig"))
}
