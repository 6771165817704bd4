package navercommerce

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// echoingGateway answers every token request with what answer builds from the request's
// signature: a gateway (or a proxy in front of it) that echoes input.
type echoingGateway struct {
	answer func(sign string) (status int, header http.Header, body string)
	mu     sync.Mutex
	signs  []string
}

func (g *echoingGateway) RoundTrip(req *http.Request) (*http.Response, error) {
	raw, _ := io.ReadAll(req.Body)
	req.Body.Close()
	form, _ := url.ParseQuery(string(raw))
	sign := form.Get("client_secret_sign")
	g.mu.Lock()
	g.signs = append(g.signs, sign)
	g.mu.Unlock()
	status, header, body := g.answer(sign)
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "application/json")
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: header,
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func (g *echoingGateway) lastSign() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.signs) == 0 {
		return ""
	}
	return g.signs[len(g.signs)-1]
}

// assertNoSignatureFragment fails when text holds 8 or more consecutive characters of sign
// (README: any fragment of 8 or more characters of the signature is removed; status:
// "Never a token, a signature or the secret").
func assertNoSignatureFragment(t *testing.T, where, text, sign string) {
	t.Helper()
	for i := 0; i+minSecretFragment <= len(sign); i++ {
		if frag := sign[i : i+minSecretFragment]; strings.Contains(text, frag) {
			t.Errorf("%s holds the signature fragment %q (at %d of the signature): %q", where, frag, i, text)
			return
		}
	}
}

func review2Env(t *testing.T, gw *echoingGateway) *testEnv {
	env := newTestEnv(t)
	env.transport = gw
	env.b = env.newBackend()
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	return env
}

// The GNCP-GW-Trace-ID header is copied unredacted into the error, the read's answer and
// status's last_error.trace_id, while the same value in the JSON body is redacted.
func TestReview2TraceIDHeaderEchoingSignatureIsNotRedacted(t *testing.T) {
	gw := &echoingGateway{answer: func(sign string) (int, http.Header, string) {
		h := http.Header{}
		h.Set("GNCP-GW-Trace-ID", sign[:60])
		return http.StatusForbidden, h, `{"code":"GW.AUTHN","message":"client_secret_sign is invalid"}`
	}}
	env := review2Env(t, gw)
	resp, err := env.read("token/store")
	sign := gw.lastSign()
	if sign == "" {
		t.Fatal("no token request reached the gateway")
	}
	assertNoSignatureFragment(t, "the token read's error", errorText(resp, err), sign)

	status, err := env.read("status/store")
	if err != nil || status.IsError() {
		t.Fatalf("status: %v %v", err, status.Error())
	}
	out, _ := json.Marshal(status.Data)
	assertNoSignatureFragment(t, "status/store", string(out), sign)
}

// A 200 whose token_type or expires_in echoes the signature: the decode error quotes 20
// characters of it, unredacted, into the read's error and status's last_error.message.
func TestReview2OddTokenResponseEchoingSignatureIsNotRedacted(t *testing.T) {
	for _, field := range []string{"token_type", "expires_in"} {
		t.Run(field, func(t *testing.T) {
			gw := &echoingGateway{answer: func(sign string) (int, http.Header, string) {
				body := map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": 10800}
				body[field] = sign
				raw, _ := json.Marshal(body)
				return http.StatusOK, nil, string(raw)
			}}
			env := review2Env(t, gw)
			resp, err := env.read("token/store")
			sign := gw.lastSign()
			if sign == "" {
				t.Fatal("no token request reached the gateway")
			}
			assertNoSignatureFragment(t, "the token read's error", errorText(resp, err), sign)
			status, err := env.read("status/store")
			if err != nil || status.IsError() {
				t.Fatalf("status: %v %v", err, status.Error())
			}
			out, _ := json.Marshal(status.Data)
			assertNoSignatureFragment(t, "status/store", string(out), sign)
		})
	}
}

// After a restart, status and metrics both count the stored tokens, and the expiry gauge is
// there: reads are served from those tokens.
func TestReview2MetricsCachedKeysAgreeWithStatusAfterRestart(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")

	env.b = env.newBackend() // a restart: same storage
	status, err := env.read("status")
	if err != nil || status.IsError() {
		t.Fatalf("status: %v %v", err, status.Error())
	}
	body := string(env.scrapeMetrics())
	m := regexp.MustCompile(`(?m)^navercommerce_cached_keys (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no navercommerce_cached_keys in\n%s", body)
	}
	// The SELLER token read before the restart and the SELF token that verified the config.
	if want := status.Data[fieldCachedKeys]; m[1] != "2" || want != 2 {
		t.Errorf("after a restart status says cached_keys=%v, metrics navercommerce_cached_keys=%s", want, m[1])
	}
	if !strings.Contains(body, "navercommerce_token_expiry_seconds ") {
		t.Error("navercommerce_token_expiry_seconds is absent although a token is cached (in storage) and served")
	}
	requests := env.requestsFor("SELLER", testAccount)
	env.readToken("store")
	if env.requestsFor("SELLER", testAccount) != requests {
		t.Fatal("the read after the restart asked Naver: the stored token was not in use")
	}
}
