package navercommerce

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
)

// Seeds live in testdata/fuzz/<FuzzName>/ as well as here; `make test` runs each target briefly.

func FuzzParseClientSecret(f *testing.F) {
	for _, s := range []string{testSecret, otherSecret, "$2b$10$QKLnou1D2cSH19Pia30bcu", "$2y$04$QKLnou1D2cSH19Pia30bcz", "", "$2a$", "$2a$99$QKLnou1D2cSH19Pia30bcu", " $2a$04$QKLnou1D2cSH19Pia30bc\u00e9"} {
		f.Add(s, "7dMvteboKNHwyRremLXXXX", "1643956077762")
	}
	f.Fuzz(func(t *testing.T, secret, clientID, timestamp string) {
		cs, err := parseClientSecret(secret)
		if err != nil {
			if trimmed := strings.TrimSpace(secret); len(trimmed) >= 8 && strings.Contains(err.Error(), trimmed) {
				t.Fatalf("error quotes the secret: %v", err)
			}
			return
		}
		if cs.cost > 6 {
			return // slow; the vectors cover high costs
		}
		sign, err := signClientSecret(cs, clientID, timestamp)
		if err != nil {
			if strings.Contains(err.Error(), strings.TrimSpace(secret)) {
				t.Fatalf("error quotes the secret: %v", err)
			}
			return
		}
		if len(sign) != 80 {
			t.Fatalf("signature of %d characters, want 80", len(sign))
		}
	})
}

func FuzzDecodeTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"abc","expires_in":10800,"token_type":"Bearer"}`,
		`{"access_token":"","expires_in":1}`, `{"expires_in":1e400}`, `<html>`, ``, `null`, `[]`,
		`{"access_token":"abc","expires_in":86400}`, `{"access_token":"abc","expires_in":-1}`,
	} {
		f.Add([]byte(s))
	}
	sent := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := decodeTokenResponse(body, sent, sent)
		if err != nil {
			return
		}
		if tok.AccessToken == "" || tok.TokenType != "Bearer" {
			t.Fatalf("accepted %+v", tok)
		}
		if left := tok.ExpiresAt.Sub(sent); left <= 0 || left > maxTokenLifetime {
			t.Fatalf("accepted a lifetime of %s", left)
		}
	})
}

func FuzzDecodeErrorResponse(f *testing.F) {
	const sign = "JDJhJDA0JFFLTG5vdTFEMmNTSDE5UGlhMzBiY3Vta2dXSGhENVVOYkhwckNHMi5VU09pQnpXQmxKaWQy"
	for _, s := range []string{
		`{"code":"GW.AUTHN","message":"bad","timestamp":"2022-02-07T07:57:11.369+09:00","traceId":"abc"}`,
		`{"code":"BadRequest","message":"x","invalidInputs":[{"name":"type","type":"NotNull","message":"required"}]}`,
		`{"message":"echo ` + sign + `"}`, `<html>`, ``, `{"code":123}`,
	} {
		f.Add([]byte(s), 403, "120")
	}
	f.Fuzz(func(t *testing.T, body []byte, status int, retryAfter string) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}, "Gncp-Gw-Trace-Id": {"t"}}}
		secrets := signatureSecrets(sign)
		e := decodeErrorResponse(resp, body, secrets)
		msg := e.Error()
		for _, secret := range secrets {
			for i := 0; i+minSecretFragment <= len(secret); i++ {
				if strings.Contains(msg, secret[i:i+minSecretFragment]) {
					t.Fatalf("a fragment of the signature leaked: %q", msg)
				}
			}
		}
		if len(msg) > 2000 {
			t.Fatalf("error of %d bytes", len(msg))
		}
		if e.RetryAfter < 0 || e.RetryAfter > 24*time.Hour {
			t.Fatalf("retry after %s", e.RetryAfter)
		}
	})
}

// FuzzRoleInput throws arbitrary values at the role fields: a role is either rejected with an
// error naming a field, or valid by every rule.
func FuzzRoleInput(f *testing.F) {
	f.Add("SELLER", testAccount, "1h")
	f.Add("self", "", "0")
	f.Add("SELF", "x", "-1s")
	f.Add("seller", "ncp 1", "abc")
	f.Add("Seller", strings.Repeat("a", 129), "99999999999999999999")
	fields := pathRoles(newBackend(backendOptions{}))[1].Fields
	f.Fuzz(func(t *testing.T, typ, account, ttl string) {
		d := &framework.FieldData{
			Raw:    map[string]any{"name": "r", "type": typ, "account_id": account, "ttl": ttl},
			Schema: fields,
		}
		r, err := roleFromRequest(nil, d)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, "type") && !strings.Contains(msg, "account_id") && !strings.Contains(msg, "ttl") {
				t.Fatalf("error names no field: %q", msg)
			}
			return
		}
		if r.Type != "SELF" && r.Type != "SELLER" {
			t.Fatalf("accepted type %q", r.Type)
		}
		if (r.Type == "SELLER") != (r.AccountID != "") {
			t.Fatalf("accepted %s with account_id %q", r.Type, r.AccountID)
		}
		if r.TTL < 0 || validateAccountID(r.AccountID) != nil {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzConfigInput does the same for the config fields; the secret never shows in an error.
func FuzzConfigInput(f *testing.F) {
	f.Add(testClientID, testSecret, defaultBaseURL, "10s", "2", "")
	f.Add(" id ", " "+testSecret+" ", "http://127.0.0.1:1/external", "60", "0", "http://u:p@proxy:3128")
	f.Add("", "secret", "http://example.com", "0", "-1", "ftp://x")
	f.Add("a b", "$2a$04$QKLnou1D2cSH19Pia30bc!", "https://[::1]:80/x?y", "1m1s", "6", "socks5://h:1")
	fields := pathConfig(newBackend(backendOptions{})).Fields
	f.Fuzz(func(t *testing.T, clientID, secret, baseURL, timeout, retries, proxy string) {
		d := &framework.FieldData{
			Raw: map[string]any{
				"client_id": clientID, "client_secret": secret, "base_url": baseURL,
				"request_timeout": timeout, "max_retries": retries, "proxy_url": proxy,
			},
			Schema: fields,
		}
		cfg, err := configFromRequest(nil, d)
		if err != nil {
			msg := err.Error()
			if s := strings.TrimSpace(secret); len(s) >= 8 && strings.Contains(msg, s) {
				t.Fatalf("error quotes the secret: %q", msg)
			}
			named := false
			for k := range fields {
				named = named || strings.Contains(msg, k)
			}
			if !named {
				t.Fatalf("error names no field: %q", msg)
			}
			return
		}
		if _, err := parseClientSecret(cfg.ClientSecret); err != nil {
			t.Fatalf("stored an invalid secret")
		}
		if validateClientID(cfg.ClientID) != nil || cfg.ClientID == "" {
			t.Fatalf("accepted client_id %q", cfg.ClientID)
		}
		if _, err := validateBaseURL(cfg.BaseURL); err != nil {
			t.Fatalf("accepted base_url %q: %v", cfg.BaseURL, err)
		}
		if cfg.RequestTimeout < time.Second || cfg.RequestTimeout > maxRequestTimeout || cfg.MaxRetries < 0 || cfg.MaxRetries > maxMaxRetries {
			t.Fatalf("accepted %+v", cfg)
		}
	})
}
