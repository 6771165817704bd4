package navercommercetest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestSignMatchesKnownVector(t *testing.T) {
	got := sign(t, knownClientID, knownTS, knownSecret)
	if got != knownSign {
		t.Fatalf("Sign = %s, want %s", got, knownSign)
	}
	if b := bcryptOf(t, got); b != knownBcrypt {
		t.Fatalf("bcrypt = %s, want %s", b, knownBcrypt)
	}
}

func TestSignRejects(t *testing.T) {
	cases := []struct{ name, clientID, secret, want string }{
		{"malformed secret", knownClientID, "hunter2", "29 characters"},
		{"bad cost", knownClientID, "$2a$03$QKLnou1D2cSH19Pia30bcu", "cost"},
		{"password over 72 bytes", strings.Repeat("x", 59), knownSecret, "at most 72"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := navercommercetest.Sign(tc.clientID, knownTS, tc.secret)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sign = %q, %v; want an error containing %q", sig, err, tc.want)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error quotes the secret: %v", err)
			}
		})
	}
	// 58 characters of client ID + "_" + 13 digits is exactly 72 bytes.
	if _, err := navercommercetest.Sign(strings.Repeat("x", 58), knownTS, knownSecret); err != nil {
		t.Fatalf("72-byte password: %v", err)
	}
}

func TestKnownVectorAccepted(t *testing.T) {
	ms, _ := strconv.ParseInt(knownTS, 10, 64)
	clock := newFakeClock(time.UnixMilli(ms))
	srv := newTestServer(t, clock, func(c *navercommercetest.Config) {
		c.Applications = []navercommercetest.Application{{ClientID: knownClientID, ClientSecret: knownSecret}}
	})
	form := url.Values{
		"client_id": {knownClientID}, "timestamp": {knownTS}, "grant_type": {"client_credentials"},
		"client_secret_sign": {knownSign}, "type": {"SELF"},
	}
	r := postToken(t, srv, form)
	wantStatus(t, r, http.StatusOK)
	if r.token.TokenType != "Bearer" || r.token.ExpiresIn != 10800 || len(r.token.AccessToken) < 43 {
		t.Fatalf("token response %+v", r.token)
	}
	if !srv.TokenValid(r.token.AccessToken) {
		t.Fatal("issued token not valid")
	}
}

// tokenCase describes one token request and the answer it must get.
type tokenCase struct {
	name string
	// build returns the request body; nil means the default good SELF form.
	form func(t *testing.T, c *fakeClock) url.Values
	// edit adjusts the HTTP request after it is built.
	edit          func(r *http.Request)
	status        int
	code          string
	message       string // substring of the error message
	invalidInput  string // name:type expected among invalidInputs
	violation     string // substring expected among Violations
	wantToken     bool
	noViolations  bool
	setupEmulator func(s *navercommercetest.Server)
}

func TestTokenRequestValidation(t *testing.T) {
	good := func(t *testing.T, c *fakeClock) url.Values { return selfForm(t, clientID, secret, c.Millis()) }
	withTS := func(offset time.Duration) func(t *testing.T, c *fakeClock) url.Values {
		return func(t *testing.T, c *fakeClock) url.Values {
			ts := strconv.FormatInt(c.Now().Add(offset).UnixMilli(), 10)
			return selfForm(t, clientID, secret, ts)
		}
	}
	mutate := func(f func(v url.Values)) func(t *testing.T, c *fakeClock) url.Values {
		return func(t *testing.T, c *fakeClock) url.Values {
			v := good(t, c)
			f(v)
			return v
		}
	}
	const window = 5 * time.Minute

	cases := []tokenCase{
		{name: "good SELF", status: 200, wantToken: true, noViolations: true},
		{name: "good SELLER", form: func(t *testing.T, c *fakeClock) url.Values {
			return sellerForm(t, clientID, secret, c.Millis(), sellerID)
		}, status: 200, wantToken: true, noViolations: true},
		{name: "charset utf-8 accepted", edit: func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
		}, status: 200, wantToken: true},

		// Timestamp window, with its edges.
		{name: "timestamp now", form: withTS(0), status: 200, wantToken: true},
		{name: "timestamp exactly window old", form: withTS(-window), status: 200, wantToken: true},
		{name: "timestamp 1ms too old", form: withTS(-window - time.Millisecond), status: 403, code: "GW.AUTHN", message: "timestamp is out of the allowed range (5 minutes)"},
		{name: "timestamp hours old", form: withTS(-3 * time.Hour), status: 403, code: "GW.AUTHN", message: "timestamp"},
		{name: "timestamp 1ms in future", form: withTS(time.Millisecond), status: 403, code: "GW.AUTHN", message: "timestamp is out of the allowed range"},
		{name: "timestamp minutes in future", form: withTS(2 * time.Minute), status: 403, code: "GW.AUTHN", message: "timestamp"},
		{name: "timestamp in seconds", form: func(t *testing.T, c *fakeClock) url.Values {
			return selfForm(t, clientID, secret, strconv.FormatInt(c.Now().Unix(), 10))
		}, status: 403, code: "GW.AUTHN", message: "timestamp"},
		{name: "timestamp not a number", form: func(t *testing.T, c *fakeClock) url.Values {
			return selfForm(t, clientID, secret, "2024-05-01T09:00:00Z")
		}, status: 400, code: "BadRequest", invalidInput: "timestamp:Pattern"},
		{name: "timestamp leading zero", form: func(t *testing.T, c *fakeClock) url.Values {
			return selfForm(t, clientID, secret, "0"+c.Millis())
		}, status: 400, invalidInput: "timestamp:Pattern"},
		{name: "timestamp with sign", form: func(t *testing.T, c *fakeClock) url.Values {
			return selfForm(t, clientID, secret, "+"+c.Millis())
		}, status: 400, invalidInput: "timestamp:Pattern"},
		{name: "signed timestamp differs from sent", form: mutate(func(v url.Values) {
			ms, _ := strconv.ParseInt(v.Get("timestamp"), 10, 64)
			v.Set("timestamp", strconv.FormatInt(ms-1, 10))
		}), status: 403, code: "GW.AUTHN", message: "client_secret_sign is invalid"},

		// Signatures.
		{name: "signature one char changed", form: mutate(func(v url.Values) {
			s := []byte(v.Get("client_secret_sign"))
			s[60] = flip(s[60])
			v.Set("client_secret_sign", string(s))
		}), status: 403, code: "GW.AUTHN", message: "client_secret_sign is invalid"},
		{name: "signature with another salt", form: func(t *testing.T, c *fakeClock) url.Values {
			ts := c.Millis()
			v := selfForm(t, clientID, secret, ts)
			v.Set("client_secret_sign", sign(t, clientID, ts, otherSecret))
			return v
		}, status: 403, code: "GW.AUTHN", message: "client_secret_sign is invalid"},
		{name: "signature for another client_id", form: func(t *testing.T, c *fakeClock) url.Values {
			ts := c.Millis()
			v := selfForm(t, clientID, secret, ts)
			v.Set("client_secret_sign", sign(t, "restricted-app", ts, secret))
			return v
		}, status: 403, code: "GW.AUTHN"},
		{name: "signature with $2b$ for a $2a$ secret", form: func(t *testing.T, c *fakeClock) url.Values {
			ts := c.Millis()
			v := selfForm(t, clientID, secret, ts)
			v.Set("client_secret_sign", sign(t, clientID, ts, "$2b$"+secret[4:]))
			return v
		}, status: 403, code: "GW.AUTHN"},
		{name: "signature with another cost", form: func(t *testing.T, c *fakeClock) url.Values {
			ts := c.Millis()
			v := selfForm(t, clientID, secret, ts)
			v.Set("client_secret_sign", sign(t, clientID, ts, "$2a$05$"+secret[7:]))
			return v
		}, status: 403, code: "GW.AUTHN"},
		{name: "signature is raw bcrypt, not base64", form: mutate(func(v url.Values) {
			raw, _ := base64.StdEncoding.DecodeString(v.Get("client_secret_sign"))
			v.Set("client_secret_sign", string(raw))
		}), status: 403, code: "GW.AUTHN"},
		{name: "signature is base64 of bcrypt plus newline", form: mutate(func(v url.Values) {
			raw, _ := base64.StdEncoding.DecodeString(v.Get("client_secret_sign"))
			v.Set("client_secret_sign", base64.StdEncoding.EncodeToString(append(raw, '\n')))
		}), status: 403, code: "GW.AUTHN"},
		{name: "signature is hex", form: mutate(func(v url.Values) {
			raw, _ := base64.StdEncoding.DecodeString(v.Get("client_secret_sign"))
			v.Set("client_secret_sign", hex.EncodeToString(raw))
		}), status: 403, code: "GW.AUTHN"},
		{name: "signature with trailing newline", form: mutate(func(v url.Values) {
			v.Set("client_secret_sign", v.Get("client_secret_sign")+"\n")
		}), status: 403, code: "GW.AUTHN"},
		{name: "signature truncated", form: mutate(func(v url.Values) {
			v.Set("client_secret_sign", v.Get("client_secret_sign")[:76])
		}), status: 403, code: "GW.AUTHN"},

		// Clients and accounts.
		{name: "unknown client", form: func(t *testing.T, c *fakeClock) url.Values {
			return selfForm(t, "no-such-client", secret, c.Millis())
		}, status: 403, code: "GW.AUTHN", message: "client_id is invalid"},
		{name: "authorised account", form: func(t *testing.T, c *fakeClock) url.Values {
			return sellerForm(t, "restricted-app", secret, c.Millis(), sellerID)
		}, status: 200, wantToken: true},
		{name: "unknown account", form: func(t *testing.T, c *fakeClock) url.Values {
			return sellerForm(t, "restricted-app", secret, c.Millis(), "ncp_someone_else")
		}, status: 403, code: "GW.AUTHN", message: "has not authorised this application"},
		{name: "restricted app SELF needs no account", form: func(t *testing.T, c *fakeClock) url.Values {
			return selfForm(t, "restricted-app", secret, c.Millis())
		}, status: 200, wantToken: true},

		// Parameters.
		{name: "SELF with account_id", form: mutate(func(v url.Values) { v.Set("account_id", sellerID) }),
			status: 400, code: "BadRequest", invalidInput: "account_id:NotAllowed", violation: "account_id with type=SELF"},
		{name: "SELF with empty account_id", form: mutate(func(v url.Values) { v.Set("account_id", "") }),
			status: 400, invalidInput: "account_id:NotAllowed", violation: "account_id with type=SELF"},
		{name: "SELLER without account_id", form: mutate(func(v url.Values) { v.Set("type", "SELLER") }),
			status: 400, invalidInput: "account_id:NotBlank", noViolations: true},
		{name: "type lower case", form: mutate(func(v url.Values) { v.Set("type", "self") }),
			status: 400, invalidInput: "type:Pattern"},
		{name: "type missing", form: mutate(func(v url.Values) { v.Del("type") }),
			status: 400, invalidInput: "type:NotBlank"},
		{name: "wrong grant_type", form: mutate(func(v url.Values) { v.Set("grant_type", "password") }),
			status: 400, invalidInput: "grant_type:Pattern"},
		{name: "missing grant_type", form: mutate(func(v url.Values) { v.Del("grant_type") }),
			status: 400, invalidInput: "grant_type:NotBlank"},
		{name: "missing client_id", form: mutate(func(v url.Values) { v.Del("client_id") }),
			status: 400, invalidInput: "client_id:NotBlank"},
		{name: "missing timestamp", form: mutate(func(v url.Values) { v.Del("timestamp") }),
			status: 400, invalidInput: "timestamp:NotBlank"},
		{name: "missing signature", form: mutate(func(v url.Values) { v.Del("client_secret_sign") }),
			status: 400, invalidInput: "client_secret_sign:NotBlank"},
		{name: "duplicate parameter", form: mutate(func(v url.Values) { v.Add("type", "SELF") }),
			status: 400, invalidInput: "type:Duplicate"},
		{name: "unknown parameter", form: mutate(func(v url.Values) { v.Set("scope", "all") }),
			status: 400, invalidInput: "scope:NotAllowed"},

		// Transport.
		{name: "parameters in query string", edit: func(r *http.Request) {
			body := readBody(r)
			r.URL.RawQuery = body
			setBody(r, "")
		}, status: 400, code: "BadRequest", invalidInput: "client_id:NotAllowed", violation: "parameters in query string"},
		{name: "one parameter in query string", edit: func(r *http.Request) {
			r.URL.RawQuery = "grant_type=client_credentials"
		}, status: 400, invalidInput: "grant_type:NotAllowed", violation: "parameters in query string"},
		{name: "JSON content type", edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/json") },
			status: 415, code: "UnsupportedMediaType"},
		{name: "no content type", edit: func(r *http.Request) { r.Header.Del("Content-Type") },
			status: 415, code: "UnsupportedMediaType"},
		{name: "multipart content type", edit: func(r *http.Request) {
			r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		}, status: 415},
		{name: "latin1 charset", edit: func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=ISO-8859-1")
		}, status: 415},
		{name: "GET", edit: func(r *http.Request) { r.Method = http.MethodGet }, status: 405, code: "MethodNotAllowed"},
		{name: "PUT", edit: func(r *http.Request) { r.Method = http.MethodPut }, status: 405},
		{name: "malformed form body", edit: func(r *http.Request) { setBody(r, "client_id=%zz") },
			status: 400, code: "BadRequest"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(testStart)
			srv := newTestServer(t, clock)
			if tc.setupEmulator != nil {
				tc.setupEmulator(srv)
			}
			build := tc.form
			if build == nil {
				build = good
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/oauth2/token", strings.NewReader(build(t, clock).Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.edit != nil {
				tc.edit(req)
			}
			r := do(t, req)
			wantStatus(t, r, tc.status)
			checkTraceID(t, r)
			if tc.wantToken {
				if !srv.TokenValid(r.token.AccessToken) || r.token.TokenType != "Bearer" || r.token.ExpiresIn != 10800 {
					t.Fatalf("bad token response %s", r.body)
				}
				for _, h := range []string{"GNCP-GW-RateLimit-Replenish-Rate", "GNCP-GW-RateLimit-Burst-Capacity", "GNCP-GW-RateLimit-Remaining"} {
					if r.header.Get(h) == "" {
						t.Errorf("missing header %s", h)
					}
				}
			} else {
				if srv.IssuedTokens() != 0 {
					t.Fatalf("a token was issued for a rejected request")
				}
				checkErrorBody(t, r)
			}
			if tc.code != "" && r.err.Code != tc.code {
				t.Errorf("code %q, want %q", r.err.Code, tc.code)
			}
			if !strings.Contains(r.err.Message, tc.message) {
				t.Errorf("message %q, want it to contain %q", r.err.Message, tc.message)
			}
			if tc.invalidInput != "" {
				var got []string
				for _, in := range r.err.InvalidInputs {
					got = append(got, in.Name+":"+in.Type)
					if in.Message == "" {
						t.Errorf("invalid input %s without message", in.Name)
					}
				}
				if !contains(got, tc.invalidInput) {
					t.Errorf("invalidInputs %v, want %s", got, tc.invalidInput)
				}
			}
			v := srv.Violations()
			if tc.violation != "" && !anyContains(v, tc.violation) {
				t.Errorf("violations %q, want one containing %q", v, tc.violation)
			}
			if tc.noViolations && len(v) != 0 {
				t.Errorf("unexpected violations %q", v)
			}
			if srv.TokenRequests() != 1 {
				t.Errorf("TokenRequests = %d, want 1", srv.TokenRequests())
			}
		})
	}
}

var kstTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+09:00$`)

func checkTraceID(t *testing.T, r response) {
	t.Helper()
	if r.header.Get("GNCP-GW-Trace-ID") == "" {
		t.Error("missing GNCP-GW-Trace-ID header")
	}
}

func checkErrorBody(t *testing.T, r response) {
	t.Helper()
	if r.jsonErr != nil || r.err.Code == "" || r.err.Message == "" {
		t.Errorf("error body lacks code or message: %s", r.body)
	}
	if !kstTimestamp.MatchString(r.err.Timestamp) {
		t.Errorf("error timestamp %q is not RFC 3339 with ms and +09:00", r.err.Timestamp)
	}
	if r.err.TraceID == "" || r.err.TraceID != r.header.Get("GNCP-GW-Trace-ID") {
		t.Errorf("traceId %q does not match header %q", r.err.TraceID, r.header.Get("GNCP-GW-Trace-ID"))
	}
}

func TestLifetimeRule(t *testing.T) {
	clock := newFakeClock(testStart)
	// It asks needlessly on purpose.
	srv := newTestServer(t, clock, noPenalty)
	request := func() response {
		t.Helper()
		r := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
		wantStatus(t, r, http.StatusOK)
		return r
	}

	first := request().token
	if first.ExpiresIn != 10800 {
		t.Fatalf("first expires_in %d", first.ExpiresIn)
	}

	steps := []struct {
		advance   time.Duration
		sameToken bool
		expiresIn int64
	}{
		{time.Hour, true, 7200},
		{500 * time.Millisecond, true, 7199},                // whole seconds left, rounded down
		{90*time.Minute - 500*time.Millisecond, true, 1800}, // exactly 30m left: still reused
		{time.Second, false, 10800},                         // 29m59s left: a new token
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		got := request().token
		if (got.AccessToken == first.AccessToken) != s.sameToken || got.ExpiresIn != s.expiresIn {
			t.Fatalf("step %d: same token %v (want %v), expires_in %d (want %d)",
				i, got.AccessToken == first.AccessToken, s.sameToken, got.ExpiresIn, s.expiresIn)
		}
		if !s.sameToken {
			second := got
			if !srv.TokenValid(first.AccessToken) || !srv.TokenValid(second.AccessToken) {
				t.Fatal("old and new tokens must both be valid")
			}
			wantStatus(t, getAccount(t, srv, first.AccessToken), http.StatusOK)
			wantStatus(t, getAccount(t, srv, second.AccessToken), http.StatusOK)
			if srv.IssuedTokens() != 2 {
				t.Fatalf("IssuedTokens = %d, want 2", srv.IssuedTokens())
			}
			// The old token dies at its own expiry, the new one lives on.
			clock.Advance(29*time.Minute + 58*time.Second)
			if !srv.TokenValid(first.AccessToken) {
				t.Fatal("old token died before its expiry")
			}
			clock.Advance(time.Second)
			if srv.TokenValid(first.AccessToken) || !srv.TokenValid(second.AccessToken) {
				t.Fatal("at the old token's expiry: old must be invalid, new valid")
			}
			wantStatus(t, getAccount(t, srv, first.AccessToken), http.StatusUnauthorized)
			// The new token expires after its full lifetime.
			clock.Advance(3*time.Hour - 30*time.Minute)
			if !srv.TokenValid(second.AccessToken) {
				t.Fatal("new token died early")
			}
			clock.Advance(time.Second)
			if srv.TokenValid(second.AccessToken) {
				t.Fatal("new token outlived its lifetime")
			}
		}
	}
	if got := srv.TokenRequestsFor(clientID, "SELF", ""); got != 5 {
		t.Errorf("TokenRequestsFor = %d, want 5", got)
	}
	// Three requests were answered with the same token while it had 30m+ left.
	if v := srv.Violations(); len(v) != 3 || !anyContains(v, "needless token request") {
		t.Errorf("violations %q, want 3 needless token requests", v)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	self := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	seller := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID))
	other := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), "ncp_other"))
	tokens := map[string]bool{self.token.AccessToken: true, seller.token.AccessToken: true, other.token.AccessToken: true}
	if len(tokens) != 3 || srv.IssuedTokens() != 3 {
		t.Fatalf("want 3 distinct tokens, got %d (issued %d)", len(tokens), srv.IssuedTokens())
	}
	for _, k := range [][3]string{{clientID, "SELF", ""}, {clientID, "SELLER", sellerID}, {clientID, "SELLER", "ncp_other"}} {
		if n := srv.TokenRequestsFor(k[0], k[1], k[2]); n != 1 {
			t.Errorf("TokenRequestsFor%v = %d", k, n)
		}
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Errorf("violations %q", v)
	}
}

func TestSetTokenLifetime(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	srv.SetTokenLifetime(31 * time.Minute)
	a := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token
	if a.ExpiresIn != 31*60 {
		t.Fatalf("expires_in %d", a.ExpiresIn)
	}
	clock.Advance(time.Minute) // 30m left: reused
	if b := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token; b.AccessToken != a.AccessToken || b.ExpiresIn != 1800 {
		t.Fatalf("want reuse with 1800s, got %+v", b)
	}
	clock.Advance(time.Second) // under 30m: new
	if c := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis())).token; c.AccessToken == a.AccessToken {
		t.Fatal("want a new token")
	}
}

func TestProtectedAPI(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	tok := postToken(t, srv, sellerForm(t, clientID, secret, clock.Millis(), sellerID)).token.AccessToken

	r := getAccount(t, srv, tok)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, `"accountId":"`+sellerID+`"`) || !strings.Contains(r.body, `"type":"SELLER"`) {
		t.Fatalf("account body %s", r.body)
	}

	for name, header := range map[string]string{
		"no header":      "",
		"unknown token":  "Bearer not-a-token",
		"wrong scheme":   "Basic " + tok,
		"no scheme":      tok,
		"empty bearer":   "Bearer ",
		"token in quote": `Bearer "` + tok + `"`,
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/seller/account", nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			r := do(t, req)
			wantStatus(t, r, http.StatusUnauthorized)
			if r.err.Code != "GW.AUTHN" || r.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("401 body %s headers %v", r.body, r.header)
			}
			checkErrorBody(t, r)
		})
	}

	clock.Advance(3 * time.Hour)
	wantStatus(t, getAccount(t, srv, tok), http.StatusUnauthorized)
}

func TestRotation(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	old := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	wantStatus(t, old, http.StatusOK)

	srv.SetClientSecret(clientID, otherSecret)

	r := postToken(t, srv, selfForm(t, clientID, secret, clock.Millis()))
	wantStatus(t, r, http.StatusForbidden)
	if r.err.Message != "client_secret_sign is invalid" {
		t.Fatalf("message %q", r.err.Message)
	}
	if srv.TokenValid(old.token.AccessToken) {
		t.Fatal("token minted under the old secret survived rotation")
	}
	r = postToken(t, srv, selfForm(t, clientID, otherSecret, clock.Millis()))
	wantStatus(t, r, http.StatusOK)
	if r.token.AccessToken == old.token.AccessToken || r.token.ExpiresIn != 10800 {
		t.Fatalf("want a fresh token after rotation, got %+v", r.token)
	}
	// Other applications are untouched.
	wantStatus(t, postToken(t, srv, selfForm(t, "restricted-app", secret, clock.Millis())), http.StatusOK)
}

func TestNonCanonicalSaltInSignatureRejected(t *testing.T) {
	// The secret's last salt character is not canonical ('z' has low bits
	// set); the libraries emit 'u' for it. A signer that copies 'z' verbatim
	// produces a hash x/crypto/bcrypt would accept but Naver's libraries
	// never produce.
	const nonCanonical = "$2a$04$QKLnou1D2cSH19Pia30bcz"
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock, func(c *navercommercetest.Config) {
		c.Applications = []navercommercetest.Application{{ClientID: knownClientID, ClientSecret: nonCanonical}}
	})
	ts := clock.Millis()
	good := bcryptOf(t, sign(t, knownClientID, ts, nonCanonical))
	if good[:29] != knownSecret {
		t.Fatalf("test signer did not canonicalise the salt: %s", good[:29])
	}
	form := selfForm(t, knownClientID, nonCanonical, ts)
	wantStatus(t, postToken(t, srv, form), http.StatusOK)

	bad := nonCanonical + good[29:]
	form.Set("client_secret_sign", base64.StdEncoding.EncodeToString([]byte(bad)))
	wantStatus(t, postToken(t, srv, form), http.StatusForbidden)
}

func TestNotFoundAndTraceHeader(t *testing.T) {
	srv := newTestServer(t, newFakeClock(testStart))
	for _, path := range []string{"/external/v1/oauth2/token/", "/v1/oauth2/token", "/external/v2/whatever"} {
		res, err := http.Post(srv.RootURL+path, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || res.Header.Get("GNCP-GW-Trace-ID") == "" {
			t.Errorf("%s: status %d, trace %q", path, res.StatusCode, res.Header.Get("GNCP-GW-Trace-ID"))
		}
	}
}

func TestBasePath(t *testing.T) {
	srv := newTestServer(t, newFakeClock(testStart), func(c *navercommercetest.Config) { c.BasePath = "/partner/" })
	if !strings.HasSuffix(srv.URL, "/partner") || srv.RootURL+"/partner" != srv.URL {
		t.Fatalf("URL %q RootURL %q", srv.URL, srv.RootURL)
	}
}

func TestLoggerNeverLogsSecrets(t *testing.T) {
	var buf bytes.Buffer
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock, noPenalty, func(c *navercommercetest.Config) { c.Logger = log.New(&buf, "", 0) })
	form := selfForm(t, clientID, secret, clock.Millis())
	tok := postToken(t, srv, form).token.AccessToken
	postToken(t, srv, form) // reused: a violation is logged too
	bad := selfForm(t, clientID, otherSecret, clock.Millis())
	postToken(t, srv, bad)

	out := buf.String()
	if !strings.Contains(out, "status=200") || !strings.Contains(out, "status=403") || !strings.Contains(out, "key_requests=3") {
		t.Fatalf("log lacks request lines:\n%s", out)
	}
	for _, s := range []string{secret, secret[7:], otherSecret[7:], form.Get("client_secret_sign"), bad.Get("client_secret_sign"), tok} {
		if strings.Contains(out, s) {
			t.Fatalf("log contains secret material %q:\n%s", s, out)
		}
	}
}

func TestNewRejectsBadFixtures(t *testing.T) {
	for name, apps := range map[string][]navercommercetest.Application{
		"empty client id":  {{ClientSecret: secret}},
		"duplicate client": {{ClientID: "a", ClientSecret: secret}, {ClientID: "a", ClientSecret: secret}},
		"short secret":     {{ClientID: "a", ClientSecret: "$2a$04$short"}},
		"bad version":      {{ClientID: "a", ClientSecret: "$3a$04$QKLnou1D2cSH19Pia30bcu"}},
		"bad cost":         {{ClientID: "a", ClientSecret: "$2a$03$QKLnou1D2cSH19Pia30bcu"}},
		"bad alphabet":     {{ClientID: "a", ClientSecret: "$2a$04$QKLnou1D2cSH19Pia30bc+"}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("New did not panic")
				}
			}()
			navercommercetest.New(navercommercetest.Config{Applications: apps})
		})
	}
	for _, s := range []string{knownSecret, "$2b$10$QKLnou1D2cSH19Pia30bcz", "$2y$31$QKLnou1D2cSH19Pia30bcu"} {
		if err := navercommercetest.CheckClientSecret(s); err != nil {
			t.Errorf("CheckClientSecret(%q): %v", s, err)
		}
	}
}

// TestHandlerWithoutServer shows New works as a plain http.Handler.
func TestHandlerWithoutServer(t *testing.T) {
	clock := newFakeClock(testStart)
	e := navercommercetest.New(navercommercetest.Config{
		Applications: []navercommercetest.Application{{ClientID: clientID, ClientSecret: secret}},
		Now:          clock.Now,
	})
	req := httptest.NewRequest(http.MethodPost, "/external/v1/oauth2/token", strings.NewReader(selfForm(t, clientID, secret, clock.Millis()).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || e.IssuedTokens() != 1 {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
}

func flip(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

func readBody(r *http.Request) string {
	var b strings.Builder
	if r.Body != nil {
		buf := new(bytes.Buffer)
		buf.ReadFrom(r.Body)
		b.Write(buf.Bytes())
	}
	return b.String()
}

func setBody(r *http.Request, s string) {
	r.Body = http.NoBody
	r.ContentLength = 0
	if s != "" {
		req, _ := http.NewRequest(r.Method, r.URL.String(), strings.NewReader(s))
		r.Body, r.ContentLength, r.GetBody = req.Body, req.ContentLength, req.GetBody
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func anyContains(list []string, sub string) bool {
	for _, x := range list {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}
