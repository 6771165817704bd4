package navercommercetest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestNewTokenRequest(t *testing.T) {
	ms, _ := strconv.ParseInt(knownTS, 10, 64)
	now := time.UnixMilli(ms)
	app := navercommercetest.Application{ClientID: knownClientID, ClientSecret: knownSecret}
	cases := []struct {
		name, typ, accountID string
		want                 url.Values
	}{
		{"SELF", "SELF", "", url.Values{
			"client_id": {knownClientID}, "timestamp": {knownTS}, "grant_type": {"client_credentials"},
			"client_secret_sign": {knownSign}, "type": {"SELF"},
		}},
		{"SELLER", "SELLER", sellerID, url.Values{
			"client_id": {knownClientID}, "timestamp": {knownTS}, "grant_type": {"client_credentials"},
			"client_secret_sign": {knownSign}, "type": {"SELLER"}, "account_id": {sellerID},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := navercommercetest.NewTokenRequest("http://127.0.0.1:1/external/", app, tc.typ, tc.accountID, now)
			if req.Method != http.MethodPost || req.URL.String() != "http://127.0.0.1:1/external/v1/oauth2/token" ||
				req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || req.Header.Get("Accept") != "application/json" {
				t.Fatalf("request %s %s %v", req.Method, req.URL, req.Header)
			}
			body, _ := io.ReadAll(req.Body)
			got, err := url.ParseQuery(string(body))
			if err != nil {
				t.Fatal(err)
			}
			if got.Encode() != tc.want.Encode() {
				t.Fatalf("form\n%s\nwant\n%s", got.Encode(), tc.want.Encode())
			}
		})
	}

	// It works with a bare handler too, like httptest.NewRequest.
	e := navercommercetest.New(navercommercetest.Config{Applications: []navercommercetest.Application{app}, Now: func() time.Time { return now }})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, navercommercetest.NewTokenRequest("/external", app, "SELF", "", now))
	if rec.Code != http.StatusOK || e.IssuedTokens() != 1 {
		t.Fatalf("handler answered %d %s", rec.Code, rec.Body)
	}

	for name, f := range map[string]func(){
		"bad secret": func() {
			navercommercetest.NewTokenRequest("http://127.0.0.1:1", navercommercetest.Application{ClientID: "a", ClientSecret: "x"}, "SELF", "", now)
		},
		"bad URL": func() { navercommercetest.NewTokenRequest("http://[::1", app, "SELF", "", now) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewTokenRequest did not panic", name)
				}
			}()
			f()
		}()
	}
}
