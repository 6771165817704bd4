package navercommercetest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func adminPost(t *testing.T, srv *navercommercetest.Server, path, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.RootURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return do(t, req)
}

func TestAdminEndpoints(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	tok := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)).token.AccessToken
	bad := selfForm(t, clientID, secret, clock.Millis())
	bad.Set("account_id", sellerID)
	postToken(t, srv, bad)

	// Stats.
	res, err := http.Get(srv.RootURL + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		TokenRequests int      `json:"token_requests"`
		IssuedTokens  int      `json:"issued_tokens"`
		Violations    []string `json:"violations"`
		Keys          map[string]struct {
			Requests    int `json:"requests"`
			MaxInFlight int `json:"max_in_flight"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	k := st.Keys[clientID+"|SELLER|"+sellerID]
	if st.TokenRequests != 2 || st.IssuedTokens != 1 || len(st.Violations) != 1 || k.Requests != 1 || k.MaxInFlight != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, ok := st.Keys[clientID+"|SELF|"+sellerID]; !ok {
		t.Fatalf("stats lack the violating key: %+v", st.Keys)
	}

	// Verify: the token goes in the form body.
	verify := func(token string) bool {
		t.Helper()
		r := adminPost(t, srv, "/_emulator/verify", "application/x-www-form-urlencoded", url.Values{"token": {token}}.Encode())
		wantStatus(t, r, http.StatusOK)
		var v struct{ Valid bool }
		if err := json.Unmarshal([]byte(r.body), &v); err != nil {
			t.Fatal(err)
		}
		return v.Valid
	}
	if !verify(tok) || verify("nope") {
		t.Fatal("verify gives wrong answers")
	}
	// Kill: as a seller's re-authorisation, Naver refuses the token from then on.
	kill := func(token string) bool {
		t.Helper()
		r := adminPost(t, srv, "/_emulator/kill-token", "application/x-www-form-urlencoded", url.Values{"token": {token}}.Encode())
		wantStatus(t, r, http.StatusOK)
		var v struct{ Killed bool }
		if err := json.Unmarshal([]byte(r.body), &v); err != nil {
			t.Fatal(err)
		}
		return v.Killed
	}
	if !kill(tok) || verify(tok) || kill(tok) {
		t.Fatal("kill-token did not kill the token once")
	}

	// Faults, with snake_case and Go field names.
	wantStatus(t, adminPost(t, srv, "/_emulator/faults", "application/json", `{"status": 503, "retry_after": "30", "count": 1}`), http.StatusNoContent)
	wantStatus(t, adminPost(t, srv, "/_emulator/faults", "application/json", `{"Status": 500, "Delay": "10ms", "RetryAfter": "1"}`), http.StatusNoContent)
	r := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	if r.status != 503 || r.err.Code != "GW.BLOCK" || r.header.Get("Retry-After") != "30" {
		t.Fatalf("first admin fault: %d %s", r.status, r.body)
	}
	r = postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	if r.status != 500 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("second admin fault: %d %s", r.status, r.body)
	}
	wantStatus(t, adminPost(t, srv, "/_emulator/faults", "application/json", `{"drop_connection": true}`), http.StatusNoContent)
	srv.Reset() // clears the queued drop

	// Token lifetime.
	wantStatus(t, adminPost(t, srv, "/_emulator/token-lifetime", "application/json", `{"token_lifetime": "31m"}`), http.StatusNoContent)
	r = postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	if r.token.ExpiresIn != 31*60 {
		t.Fatalf("expires_in %d after token-lifetime 31m", r.token.ExpiresIn)
	}

	// Client secret rotation.
	wantStatus(t, adminPost(t, srv, "/_emulator/client-secret", "application/json",
		`{"client_id": "`+clientID+`", "client_secret": "`+otherSecret+`"}`), http.StatusNoContent)
	wantStatus(t, postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())), http.StatusForbidden)
	wantStatus(t, postToken(t, srv, selfForm(t, clientID, otherSecret, clock.Millis())), http.StatusOK)

	// Reset.
	wantStatus(t, adminPost(t, srv, "/_emulator/reset", "", ""), http.StatusNoContent)
	if s := srv.Stats(); s.TokenRequests != 0 || s.IssuedTokens != 0 || len(s.Violations) != 0 || len(s.Keys) != 0 {
		t.Fatalf("stats after reset %+v", s)
	}
	res, err = http.Get(srv.RootURL + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var raw map[string]any
	json.NewDecoder(res.Body).Decode(&raw)
	if v, ok := raw["violations"].([]any); !ok || len(v) != 0 {
		t.Fatalf("violations after reset must be an empty list, got %#v", raw["violations"])
	}
}

// TestAdminFaultsAimedAndCleared: through the admin API, a fault aimed at
// an account or a type answers only that key's token requests, and
// DELETE /_emulator/faults ends the outage leaving every token alive (POST
// /_emulator/reset would kill them).
func TestAdminFaultsAimedAndCleared(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock, noPenalty)
	self := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token.AccessToken
	seller := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)).token.AccessToken

	wantStatus(t, adminPost(t, srv, "/_emulator/faults", "application/json", `{"status": 503, "count": 1000, "account_id": "`+sellerID+`"}`), http.StatusNoContent)
	wantStatus(t, adminPost(t, srv, "/_emulator/faults", "application/json", `{"Status": 500, "Type": "SELF"}`), http.StatusNoContent)
	wantStatus(t, postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), "ncp_other")), http.StatusOK)
	wantStatus(t, postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)), http.StatusServiceUnavailable)
	wantStatus(t, postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())), http.StatusInternalServerError)
	wantStatus(t, postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())), http.StatusOK)
	wantStatus(t, postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)), http.StatusServiceUnavailable)

	clearFaults := func() int {
		t.Helper()
		req, err := http.NewRequest(http.MethodDelete, srv.RootURL+"/_emulator/faults", nil)
		if err != nil {
			t.Fatal(err)
		}
		r := do(t, req)
		wantStatus(t, r, http.StatusOK)
		var v struct{ Cleared int }
		if err := json.Unmarshal([]byte(r.body), &v); err != nil {
			t.Fatalf("DELETE /_emulator/faults answered %q: %v", r.body, err)
		}
		return v.Cleared
	}
	if n := clearFaults(); n != 1 {
		t.Fatalf("cleared %d faults, want the 1 still queued", n)
	}
	if n := clearFaults(); n != 0 {
		t.Fatalf("cleared %d faults the second time, want 0", n)
	}
	if r := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)); r.status != http.StatusOK || r.token.AccessToken != seller {
		t.Fatalf("after the outage the seller key got %d %q, want 200 and its token again", r.status, r.token.AccessToken)
	}
	for name, tok := range map[string]string{"SELF": self, "SELLER": seller} {
		wantStatus(t, getAccount(t, srv, tok), http.StatusOK)
		if !srv.TokenValid(tok) {
			t.Errorf("the %s token died with the faults", name)
		}
	}
	if got := srv.TokenRequestsFor(clientID, "SELLER", sellerID); got != 4 {
		t.Fatalf("the seller key's requests = %d, want 4: clearing faults keeps the counters", got)
	}
}

func TestAdminRejectsBadInput(t *testing.T) {
	srv := newTestServer(t, newFakeClock(testStart))
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
	}{
		{"stats POST", http.MethodPost, "/_emulator/stats", "", "", 405},
		{"faults GET", http.MethodGet, "/_emulator/faults", "", "", 405},
		{"fault unknown field", http.MethodPost, "/_emulator/faults", "application/json", `{"stauts": 500}`, 400},
		{"fault no effect", http.MethodPost, "/_emulator/faults", "application/json", `{}`, 400},
		{"fault bad delay", http.MethodPost, "/_emulator/faults", "application/json", `{"delay": "soon"}`, 400},
		{"fault numeric delay", http.MethodPost, "/_emulator/faults", "application/json", `{"delay": 2}`, 400},
		{"fault bad status", http.MethodPost, "/_emulator/faults", "application/json", `{"status": 42}`, 400},
		{"fault not JSON", http.MethodPost, "/_emulator/faults", "application/json", `status=500`, 400},
		{"fault bad type", http.MethodPost, "/_emulator/faults", "application/json", `{"status": 500, "type": "seller"}`, 400},
		{"fault SELF with account", http.MethodPost, "/_emulator/faults", "application/json", `{"status": 500, "type": "SELF", "account_id": "ncp_1"}`, 400},
		{"fault aim alone", http.MethodPost, "/_emulator/faults", "application/json", `{"account_id": "ncp_1"}`, 400},
		{"faults PUT", http.MethodPut, "/_emulator/faults", "application/json", `{"status": 500}`, 405},
		{"lifetime bad", http.MethodPost, "/_emulator/token-lifetime", "application/json", `{"token_lifetime": "-1m"}`, 400},
		{"lifetime missing", http.MethodPost, "/_emulator/token-lifetime", "application/json", `{}`, 400},
		{"secret unknown client", http.MethodPost, "/_emulator/client-secret", "application/json", `{"client_id": "x", "client_secret": "` + otherSecret + `"}`, 400},
		{"secret malformed", http.MethodPost, "/_emulator/client-secret", "application/json", `{"client_id": "` + clientID + `", "client_secret": "hunter2"}`, 400},
		{"verify token in URL", http.MethodPost, "/_emulator/verify?token=abc", "application/x-www-form-urlencoded", "", 400},
		{"verify JSON", http.MethodPost, "/_emulator/verify", "application/json", `{"token": "abc"}`, 415},
		{"verify no token", http.MethodPost, "/_emulator/verify", "application/x-www-form-urlencoded", "", 400},
		{"verify GET", http.MethodGet, "/_emulator/verify", "", "", 405},
		{"reset GET", http.MethodGet, "/_emulator/reset", "", "", 405},
		{"latency GET", http.MethodGet, "/_emulator/latency", "", "", 405},
		{"latency bad", http.MethodPost, "/_emulator/latency", "application/json", `{"latency": "soon"}`, 400},
		{"latency negative", http.MethodPost, "/_emulator/latency", "application/json", `{"latency": "-1s"}`, 400},
		{"jitter negative", http.MethodPost, "/_emulator/latency", "application/json", `{"jitter": "-1s"}`, 400},
		{"latency unknown field", http.MethodPost, "/_emulator/latency", "application/json", `{"delay": "1s"}`, 400},
		{"jwt missing enabled", http.MethodPost, "/_emulator/jwt-tokens", "application/json", `{}`, 400},
		{"jwt not bool", http.MethodPost, "/_emulator/jwt-tokens", "application/json", `{"enabled": "yes"}`, 400},
		{"reused missing enabled", http.MethodPost, "/_emulator/reused-token-full-lifetime", "application/json", `{}`, 400},
		{"reused GET", http.MethodGet, "/_emulator/reused-token-full-lifetime", "", "", 405},
		{"penalty bad duration", http.MethodPost, "/_emulator/penalty", "application/json", `{"duration": "-1h"}`, 400},
		{"penalty unknown field", http.MethodPost, "/_emulator/penalty", "application/json", `{"enabled": true}`, 400},
		{"penalty DELETE", http.MethodDelete, "/_emulator/penalty", "", "", 405},
		{"unknown", http.MethodGet, "/_emulator/nope", "", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.RootURL+tc.path, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			r := do(t, req)
			wantStatus(t, r, tc.status)
		})
	}
	if srv.TokenRequests() != 0 {
		t.Fatal("admin requests counted as token requests")
	}
}

// TestAdminSettings drives latency, the token modes and the penalty through
// the admin endpoints, as a test of a separate emulator process does.
func TestAdminSettings(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	getJSON := func(path string, v any) {
		t.Helper()
		res, err := http.Get(srv.RootURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}

	// Latency.
	wantStatus(t, adminPost(t, srv, "/_emulator/latency", "application/json", `{"latency": "250ms", "jitter": "10ms"}`), http.StatusNoContent)
	if fixed, jitter := srv.Latency(); fixed != 250*time.Millisecond || jitter != 10*time.Millisecond {
		t.Fatalf("latency %v jitter %v", fixed, jitter)
	}
	wantStatus(t, adminPost(t, srv, "/_emulator/latency", "application/json", `{}`), http.StatusNoContent)
	if fixed, jitter := srv.Latency(); fixed != 0 || jitter != 0 {
		t.Fatalf("latency %v jitter %v after {}", fixed, jitter)
	}

	// JWT tokens.
	wantStatus(t, adminPost(t, srv, "/_emulator/jwt-tokens", "application/json", `{"enabled": true}`), http.StatusNoContent)
	first := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token
	decodeJWT(t, first.AccessToken)

	// Reused-token mode (with the penalty off: asking again is needless).
	wantStatus(t, adminPost(t, srv, "/_emulator/penalty", "application/json", `{"disabled": true}`), http.StatusNoContent)
	wantStatus(t, adminPost(t, srv, "/_emulator/reused-token-full-lifetime", "application/json", `{"enabled": true}`), http.StatusNoContent)
	clock.Advance(time.Hour)
	if again := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token; again.AccessToken != first.AccessToken || again.ExpiresIn != 10800 {
		t.Fatalf("reused token %+v", again)
	}
	wantStatus(t, adminPost(t, srv, "/_emulator/reused-token-full-lifetime", "application/json", `{"enabled": false}`), http.StatusNoContent)
	if again := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token; again.ExpiresIn != 7200 {
		t.Fatalf("reused token after turning the mode off %+v", again)
	}

	// Penalty settings: GET shows them, POST replaces them (omitted = default).
	var p map[string]any
	getJSON("/_emulator/penalty", &p)
	if p["disabled"] != true || p["requests_per_hour"] != float64(60) || p["duration"] != "1h0m0s" {
		t.Fatalf("penalty settings %v", p)
	}
	wantStatus(t, adminPost(t, srv, "/_emulator/penalty", "application/json",
		`{"violations_allowed": 1, "requests_per_hour": -5, "duration": "2h", "retry_after": true}`), http.StatusNoContent)
	if got := srv.PenaltySettings(); got != (navercommercetest.PenaltyConfig{ViolationsAllowed: 1, RequestsPerHour: -1, Duration: 2 * time.Hour, RetryAfter: true}) {
		t.Fatalf("PenaltySettings %+v", got)
	}
	wantStatus(t, adminPost(t, srv, "/_emulator/penalty", "application/json", `{}`), http.StatusNoContent)
	srv.Reset()

	// The penalty state in the stats.
	postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())) // needless: penalised
	var st struct {
		Penalties map[string]struct {
			Active bool      `json:"active"`
			Until  time.Time `json:"until"`
			Reason string    `json:"reason"`
		} `json:"penalties"`
		PenalisedUntil time.Time `json:"penalised_until"`
		PenaltyReason  string    `json:"penalty_reason"`
	}
	getJSON("/_emulator/stats", &st)
	want := clock.Now().Add(time.Hour)
	p0 := st.Penalties[clientID]
	if !p0.Active || !p0.Until.Equal(want) || !st.PenalisedUntil.Equal(want) ||
		!strings.HasPrefix(p0.Reason, "needless token request") || st.PenaltyReason != p0.Reason {
		t.Fatalf("stats penalty %+v", st)
	}
	// With no penalty on record the fields are absent, the map empty.
	wantStatus(t, adminPost(t, srv, "/_emulator/reset", "", ""), http.StatusNoContent)
	var raw map[string]any
	getJSON("/_emulator/stats", &raw)
	if _, ok := raw["penalised_until"]; ok || raw["penalties"] == nil || len(raw["penalties"].(map[string]any)) != 0 {
		t.Fatalf("stats after reset %v", raw)
	}
}
