package navercommercetest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
		{"lifetime bad", http.MethodPost, "/_emulator/token-lifetime", "application/json", `{"token_lifetime": "-1m"}`, 400},
		{"lifetime missing", http.MethodPost, "/_emulator/token-lifetime", "application/json", `{}`, 400},
		{"secret unknown client", http.MethodPost, "/_emulator/client-secret", "application/json", `{"client_id": "x", "client_secret": "` + otherSecret + `"}`, 400},
		{"secret malformed", http.MethodPost, "/_emulator/client-secret", "application/json", `{"client_id": "` + clientID + `", "client_secret": "hunter2"}`, 400},
		{"verify token in URL", http.MethodPost, "/_emulator/verify?token=abc", "application/x-www-form-urlencoded", "", 400},
		{"verify JSON", http.MethodPost, "/_emulator/verify", "application/json", `{"token": "abc"}`, 415},
		{"verify no token", http.MethodPost, "/_emulator/verify", "application/x-www-form-urlencoded", "", 400},
		{"verify GET", http.MethodGet, "/_emulator/verify", "", "", 405},
		{"reset GET", http.MethodGet, "/_emulator/reset", "", "", 405},
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
