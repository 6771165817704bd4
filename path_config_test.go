package navercommerce

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestConfigWriteRejectsBadInput(t *testing.T) {
	env := newTestEnv(t)
	valid := func() map[string]any {
		return map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL}
	}
	tests := []struct {
		name   string
		change map[string]any
		drop   string
		field  string
	}{
		{"missing client_id", nil, "client_id", "client_id"},
		{"missing client_secret", nil, "client_secret", "client_secret"},
		{"secret not a salt", map[string]any{"client_secret": "hunter2"}, "", "client_secret"},
		{"secret full hash", map[string]any{"client_secret": testSecret + "mkgWHhD5UNbHprCG2.USOiBzWBlJid2"}, "", "client_secret"},
		{"secret cost 03", map[string]any{"client_secret": "$2a$03$QKLnou1D2cSH19Pia30bcu"}, "", "client_secret"},
		{"client_id with space", map[string]any{"client_id": "abc def"}, "", "client_id"},
		{"client_id too long", map[string]any{"client_id": strings.Repeat("a", 58)}, "", "client_id"},
		{"base_url plain http remote", map[string]any{"base_url": "http://api.commerce.naver.com/external"}, "", "base_url"},
		{"base_url ftp", map[string]any{"base_url": "ftp://127.0.0.1/external"}, "", "base_url"},
		{"base_url relative", map[string]any{"base_url": "/external"}, "", "base_url"},
		{"base_url with query", map[string]any{"base_url": "https://api.commerce.naver.com/external?x=1"}, "", "base_url"},
		{"base_url with a bare ?", map[string]any{"base_url": "https://api.commerce.naver.com/external?"}, "", "base_url"},
		{"base_url with a bare #", map[string]any{"base_url": "https://api.commerce.naver.com/external#"}, "", "base_url"},
		{"max_token_requests_per_hour zero", map[string]any{"max_token_requests_per_hour": 0}, "", "max_token_requests_per_hour"},
		{"max_token_requests_per_hour too many", map[string]any{"max_token_requests_per_hour": 61}, "", "max_token_requests_per_hour"},
		{"base_url with user", map[string]any{"base_url": "https://u:p@api.commerce.naver.com/external"}, "", "base_url"},
		{"request_timeout zero", map[string]any{"request_timeout": "0s"}, "", "request_timeout"},
		{"request_timeout too long", map[string]any{"request_timeout": "2m"}, "", "request_timeout"},
		{"request_timeout garbage", map[string]any{"request_timeout": "soon"}, "", "request_timeout"},
		{"max_retries negative", map[string]any{"max_retries": -1}, "", "max_retries"},
		{"max_retries too many", map[string]any{"max_retries": 6}, "", "max_retries"},
		{"proxy_url ftp", map[string]any{"proxy_url": "ftp://proxy:21"}, "", "proxy_url"},
		{"proxy_url no host", map[string]any{"proxy_url": "http://"}, "", "proxy_url"},
		{"verify_connection not bool", map[string]any{"verify_connection": "perhaps"}, "", "verify_connection"},
		{"unknown field", map[string]any{"clientsecret": "x"}, "", "clientsecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := valid()
			for k, v := range tt.change {
				data[k] = v
			}
			delete(data, tt.drop)
			resp, err := env.write("config", data)
			msg := errorText(resp, err)
			if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(msg, tt.field) {
				t.Fatalf("want a 400 naming %s, got %d %q", tt.field, httpStatus(resp, err), msg)
			}
			assertNoSecrets(t, msg)
			if entry, _ := env.storage.Get(context.Background(), "config"); entry != nil {
				t.Fatal("a rejected write stored a config")
			}
		})
	}
	if n := env.naver.TokenRequests(); n != 0 {
		t.Errorf("rejected writes sent %d token requests", n)
	}
}

func TestConfigWriteReadDelete(t *testing.T) {
	env := newTestEnv(t)
	proxy := newForwardProxy(t, "user", "pa55word")
	resp, err := env.write("config", map[string]any{
		"client_id":       "  " + testClientID + " ",
		"client_secret":   " " + testSecret + "\n",
		"base_url":        env.naver.URL + "/",
		"request_timeout": "15s",
		"max_retries":     1,
		"proxy_url":       proxy.URL,
	})
	if msg := errorText(resp, err); msg != "" {
		t.Fatal(msg)
	}
	if n := env.requestsFor("SELF", ""); n != 1 || proxy.requests() != 1 {
		t.Errorf("verify_connection made %d SELF requests, %d through the proxy; want 1 and 1", n, proxy.requests())
	}

	resp, err = env.read("config")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"client_id":       testClientID,
		"base_url":        env.naver.URL,
		"request_timeout": int64(15),
		"max_retries":     1,
		"proxy_url":       strings.Replace(proxy.URL, "pa55word", "xxxxx", 1),
	}
	for k, v := range want {
		if resp.Data[k] != v {
			t.Errorf("config %s = %#v, want %#v", k, resp.Data[k], v)
		}
	}
	if _, ok := resp.Data["client_secret"]; ok {
		t.Error("config read returns client_secret")
	}
	for k, v := range resp.Data {
		if s, ok := v.(string); ok {
			assertNoSecrets(t, k+"="+s, "pa55word")
		}
	}

	// An update changes only what it names.
	env.mustWrite("config", map[string]any{"max_retries": 0})
	resp, _ = env.read("config")
	if resp.Data["max_retries"] != 0 || resp.Data["client_id"] != testClientID || resp.Data["request_timeout"] != int64(15) {
		t.Errorf("update lost fields: %v", resp.Data)
	}

	if resp, err := env.request(env.b, logical.DeleteOperation, "config", nil); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	if resp, _ := env.read("config"); resp != nil {
		t.Errorf("config still readable after delete: %v", resp.Data)
	}
	// Stored tokens stay until they expire, served only under the credentials they came
	// from: writing the same config again serves them without a request.
	before := env.naver.TokenRequests()
	env.configure()
	env.mustWrite("roles/self", map[string]any{"type": "SELF"})
	env.readToken("self")
	if n := env.naver.TokenRequests() - before; n != 0 {
		t.Errorf("re-creating the same config and reading sent %d token requests, want 0", n)
	}
	env.assertCompliant()
}

func TestConfigDefaults(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "verify_connection": false})
	resp, _ := env.read("config")
	if resp.Data["base_url"] != defaultBaseURL || resp.Data["request_timeout"] != int64(10) || resp.Data["max_retries"] != 2 {
		t.Errorf("defaults: %v", resp.Data)
	}
	if env.naver.TokenRequests() != 0 {
		t.Error("verify_connection=false still asked Naver")
	}
}

func TestConfigVerifyConnectionRefusalKeepsOldConfig(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	resp, err := env.write("config", map[string]any{"client_secret": otherSecret})
	msg := errorText(resp, err)
	if httpStatus(resp, err) != http.StatusBadRequest {
		t.Fatalf("want 400, got %d %q", httpStatus(resp, err), msg)
	}
	// The hint fits a bad signature: the secret, not the clock or a seller's account.
	for _, want := range []string{"verify_connection", "403", "GW.AUTHN", "trace ID", "check client_secret"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	assertNoSecrets(t, msg)

	cfg, err := readConfig(context.Background(), env.storage)
	if err != nil || cfg.ClientSecret != testSecret {
		t.Fatalf("the old config was not kept: %v", err)
	}
	// And it still works.
	env.mustWrite("roles/app", map[string]any{"type": "self"})
	env.readToken("app")
}

func TestConfigVerifyConnectionUnreachable(t *testing.T) {
	env := newTestEnv(t)
	env.naver.Close()
	resp, err := env.write("config", map[string]any{
		"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"max_retries": 0, "request_timeout": "2s",
	})
	if got := httpStatus(resp, err); got != http.StatusBadGateway {
		t.Fatalf("unreachable Naver: status %d (%s), want 502", got, errorText(resp, err))
	}
	if entry, _ := env.storage.Get(context.Background(), "config"); entry != nil {
		t.Fatal("stored a config that could not be verified")
	}
}

func TestConfigCredentialChangeDropsTokens(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Fatalf("first read: %d requests", n)
	}

	// Rotate the secret, as the API center does: the old one stops working at once.
	env.naver.SetClientSecret(testClientID, otherSecret)
	env.mustWrite("config", map[string]any{"client_secret": otherSecret})
	env.readToken("store")
	if n := env.requestsFor("SELLER", testAccount); n != 2 {
		t.Errorf("after a secret change the cached token was served: %d requests, want 2", n)
	}

	// A change that leaves the credentials alone keeps the cache.
	env.mustWrite("config", map[string]any{"request_timeout": "20s"})
	env.readToken("store")
	if n := env.requestsFor("SELLER", testAccount); n != 2 {
		t.Errorf("a timeout change dropped the cache: %d requests, want 2", n)
	}
	env.assertCompliant()
}

func TestConfigVerificationTokenIsCached(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	env.readToken("app")
	if n := env.requestsFor("SELF", ""); n != 1 {
		t.Errorf("the SELF token from verify_connection was not reused: %d requests", n)
	}
}

func TestInvalidateConfigDropsMemory(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	other := env.newBackend() // another node on the same storage
	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	if resp, err := env.request(other, logical.ReadOperation, "token/app", nil); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}

	// The first node rotates the secret; the other is told the key changed.
	env.naver.SetClientSecret(testClientID, otherSecret)
	env.mustWrite("config", map[string]any{"client_secret": otherSecret})
	other.invalidate(context.Background(), configStorageKey)
	st, err := other.getConfig(context.Background(), env.storage)
	if err != nil || st.config.ClientSecret != otherSecret {
		t.Fatalf("the other node kept the old config: %v", err)
	}
	if other.tokens.cached(tokenKey{ClientID: testClientID, Type: "SELF"}) != nil {
		t.Error("the other node kept a token of the old credentials in memory")
	}
}

// forwardProxy is an HTTP forward proxy that wants Basic credentials, like the fixed-IP
// proxies people put in front of Naver.
type forwardProxy struct {
	*httptest.Server
	URL   string // with credentials
	count atomic.Int32
}

func newForwardProxy(t *testing.T, user, password string) *forwardProxy {
	p := &forwardProxy{}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != want {
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		p.count.Add(1)
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Del("Proxy-Authorization")
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.Server.Close)
	u, _ := url.Parse(p.Server.URL)
	u.User = url.UserPassword(user, password)
	p.URL = u.String()
	return p
}

func (p *forwardProxy) requests() int { return int(p.count.Load()) }

// Pointing base_url elsewhere sends the next signature there, so it takes the secret.
func TestConfigBaseURLChangeNeedsTheSecret(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the new base_url received %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(other.Close)
	before := env.naver.TokenRequests()

	resp, err := env.write("config", map[string]any{"base_url": other.URL})
	msg := errorText(resp, err)
	if !strings.Contains(msg, "client_secret is required when base_url changes") {
		t.Fatalf("base_url changed without client_secret: %q, want an error naming client_secret", msg)
	}
	if resp, _ := env.read("config"); resp == nil || resp.Data["base_url"] != env.naver.URL {
		t.Errorf("the rejected write changed the config: %v", resp)
	}

	// The same address written differently is no change; with the secret, a change is allowed.
	env.mustWrite("config", map[string]any{"base_url": env.naver.URL + "/"})
	naver2 := navercommercetest.NewServer(navercommercetest.Config{
		Applications: []navercommercetest.Application{{ClientID: testClientID, ClientSecret: testSecret}},
		Now:          env.clock.Now,
	})
	t.Cleanup(naver2.Close)
	env.mustWrite("config", map[string]any{"base_url": naver2.URL, "client_secret": testSecret})
	if resp, _ := env.read("config"); resp.Data["base_url"] != naver2.URL {
		t.Errorf("base_url = %v, want %s", resp.Data["base_url"], naver2.URL)
	}
	if n := env.naver.TokenRequests() - before; n != 0 {
		t.Errorf("%d token requests to the old address, want 0", n)
	}
}
