package navercommercetest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// TestReusedTokenExpiresIn: a token handed back again reports its remaining
// life by default and its full lifetime in the reused-token mode; either way
// it dies at its real expiry.
func TestReusedTokenExpiresIn(t *testing.T) {
	cases := []struct {
		name          string
		fullLifetime  bool
		setAtRunTime  bool
		wantExpiresIn int64
	}{
		{name: "remaining life (default)", wantExpiresIn: 7200},
		{name: "full lifetime", fullLifetime: true, wantExpiresIn: 10800},
		{name: "full lifetime set at run time", fullLifetime: true, setAtRunTime: true, wantExpiresIn: 10800},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(testStart)
			// Asking again with an hour gone is needless on purpose.
			srv := newTestServer(t, clock, noPenalty, func(c *navercommercetest.Config) {
				c.ReusedTokenFullLifetime = tc.fullLifetime && !tc.setAtRunTime
			})
			if tc.setAtRunTime {
				srv.SetReusedTokenFullLifetime(true)
			}
			first := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token
			clock.Advance(time.Hour)
			again := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token
			if again.AccessToken != first.AccessToken || again.ExpiresIn != tc.wantExpiresIn {
				t.Fatalf("same token %v, expires_in %d; want the same token with %d",
					again.AccessToken == first.AccessToken, again.ExpiresIn, tc.wantExpiresIn)
			}
			clock.Advance(2*time.Hour - time.Second)
			if !srv.TokenValid(first.AccessToken) {
				t.Fatal("the token died early")
			}
			clock.Advance(time.Second)
			if srv.TokenValid(first.AccessToken) {
				t.Fatal("the reported expires_in extended the token's real life")
			}
		})
	}
}

// decodeJWT splits a JWT-shaped token and decodes its header and claims.
func decodeJWT(t *testing.T, token string) (header map[string]any, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts, want 3", token, len(parts))
	}
	for i, out := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d is not base64url: %v", i, err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("part %d is not JSON: %v", i, err)
		}
	}
	if sig, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || len(sig) < 32 {
		t.Fatalf("signature part: %d bytes, %v", len(sig), err)
	}
	return header, claims
}

func TestJWTTokens(t *testing.T) {
	clock := newFakeClock(testStart.Add(250 * time.Millisecond))
	srv := newTestServer(t, clock, func(c *navercommercetest.Config) { c.JWTTokens = true })

	r := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	wantStatus(t, r, http.StatusOK)
	header, claims := decodeJWT(t, r.token.AccessToken)
	if header["typ"] != "JWT" || header["alg"] == nil {
		t.Fatalf("header %v", header)
	}
	// exp is whole seconds, never after the real expiry.
	if exp := claims["exp"]; exp != float64(testStart.Add(3*time.Hour).Unix()) {
		t.Fatalf("exp %v, want %d", exp, testStart.Add(3*time.Hour).Unix())
	}
	if iat := claims["iat"]; iat != float64(testStart.Unix()) {
		t.Fatalf("iat %v", iat)
	}
	wantStatus(t, getAccount(t, srv, r.token.AccessToken), http.StatusOK)

	srv.SetTokenLifetime(31 * time.Minute)
	other := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID))
	_, claims2 := decodeJWT(t, other.token.AccessToken)
	if claims2["exp"] != float64(testStart.Add(31*time.Minute).Unix()) || claims2["jti"] == claims["jti"] {
		t.Fatalf("second token claims %v (first %v)", claims2, claims)
	}

	srv.SetJWTTokens(false)
	opaque := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), "ncp_other")).token.AccessToken
	if strings.Contains(opaque, ".") || len(opaque) < 43 {
		t.Fatalf("default tokens must be opaque random strings, got %q", opaque)
	}
}
