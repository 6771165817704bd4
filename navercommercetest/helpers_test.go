package navercommercetest_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// Fixtures. The known vector is Naver's documented example.
const (
	knownClientID = "aaaabbbb"
	knownTS       = "1643956077762"
	knownSecret   = "$2a$04$QKLnou1D2cSH19Pia30bcu"
	knownBcrypt   = "$2a$04$QKLnou1D2cSH19Pia30bcumkgWHhD5UNbHprCG2.USOiBzWBlJid2"
	knownSign     = "JDJhJDA0JFFLTG5vdTFEMmNTSDE5UGlhMzBiY3Vta2dXSGhENVVOYkhwckNHMi5VU09pQnpXQmxKaWQy"

	clientID    = "7dMvteboKNHwyRremLXXXX"
	secret      = "$2a$04$N1Gx7cSLNGTm1gV9kLfDKe"
	otherSecret = "$2a$04$Zx9yW8vU7tS6rQ5pO4nM3e"
	sellerID    = "ncp_2sRZTWJVbDtHPoz9OXXXX"
)

// testStart is the fake clock's starting time: 2024-05-01T09:00:00Z.
var testStart = time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is the emulator clock tests move by hand.
type fakeClock struct{ *navercommercetest.Clock }

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{navercommercetest.NewClock(t)} }

func (c *fakeClock) Millis() string { return strconv.FormatInt(c.Now().UnixMilli(), 10) }

func sign(t testing.TB, clientID, ts, secret string) string {
	t.Helper()
	sig, err := navercommercetest.Sign(clientID, ts, secret)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return sig
}

// bcryptOf returns the bcrypt string inside a signature.
func bcryptOf(t testing.TB, sig string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		t.Fatalf("signature is not base64: %v", err)
	}
	return string(raw)
}

// selfForm returns a correctly signed SELF request body.
func selfForm(t testing.TB, clientID, secret, ts string) url.Values {
	t.Helper()
	return url.Values{
		"client_id":          {clientID},
		"timestamp":          {ts},
		"grant_type":         {"client_credentials"},
		"client_secret_sign": {sign(t, clientID, ts, secret)},
		"type":               {"SELF"},
	}
}

func sellerForm(t testing.TB, clientID, secret, ts, accountID string) url.Values {
	t.Helper()
	f := selfForm(t, clientID, secret, ts)
	f.Set("type", "SELLER")
	f.Set("account_id", accountID)
	return f
}

// response is a decoded emulator answer.
type response struct {
	status  int
	header  http.Header
	body    string
	jsonErr error
	token   struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	err struct {
		Code          string `json:"code"`
		Message       string `json:"message"`
		Timestamp     string `json:"timestamp"`
		TraceID       string `json:"traceId"`
		InvalidInputs []struct {
			Name    string `json:"name"`
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"invalidInputs"`
	}
}

func do(t testing.TB, req *http.Request) response {
	t.Helper()
	r, err := send(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do for goroutines other than the test's, which must not call
// t.Fatal.
func send(req *http.Request) (response, error) {
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("reading response: %w", err)
	}
	r := response{status: res.StatusCode, header: res.Header, body: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && len(b) > 0 {
		if res.StatusCode == http.StatusOK {
			err = json.Unmarshal(b, &r.token)
		} else {
			err = json.Unmarshal(b, &r.err)
		}
		// Fault bodies may be broken JSON on purpose; callers that expect
		// a token or an error body find the fields empty.
		r.jsonErr = err
	}
	return r, nil
}

// tokenRequest is the request postToken sends.
func tokenRequest(srv *navercommercetest.Server, form url.Values) *http.Request {
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		panic(err) // srv.URL is always a valid URL
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return req
}

// postToken sends form the way a compliant client does.
func postToken(t testing.TB, srv *navercommercetest.Server, form url.Values) response {
	t.Helper()
	return do(t, tokenRequest(srv, form))
}

// getAccount calls the protected API with token.
func getAccount(t testing.TB, srv *navercommercetest.Server, token string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/seller/account", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// noPenalty turns Naver's penalty off, for tests that over-ask on purpose.
func noPenalty(c *navercommercetest.Config) { c.Penalty.Disabled = true }

// newTestServer starts an emulator with the standard applications on clock.
func newTestServer(t testing.TB, clock *fakeClock, mutate ...func(*navercommercetest.Config)) *navercommercetest.Server {
	t.Helper()
	cfg := navercommercetest.Config{
		Applications: []navercommercetest.Application{
			{ClientID: clientID, ClientSecret: secret},
			{ClientID: "restricted-app", ClientSecret: secret, AccountIDs: []string{sellerID}},
		},
		Now: clock.Now,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv := navercommercetest.NewServer(cfg)
	t.Cleanup(srv.Close)
	return srv
}

func wantStatus(t testing.TB, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}
