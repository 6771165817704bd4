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
	"time"

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

// Promise (README): "Naver is asked only when it must issue a new token"; the emulator's
// penalty makes any needless request a violation. Issue 16: "what we know about each token
// ... the credentials it came from" is kept whatever happens to the cache. Deleting the
// config and writing the same credentials again (a Terraform replacement of the config,
// or an operator undoing a mistaken delete) makes the verification and every key's next
// read ask Naver while their tokens have 2 hours left: the facts know the credentials are
// the same, but the tokens themselves were thrown away.
func TestConfigRecreatedWithSameCredentialsAsksNothing(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	env.clock.Advance(time.Hour)
	if resp, err := env.request(env.b, logical.DeleteOperation, "config", nil); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	if env.cachedToken("SELLER", testAccount) != nil {
		t.Fatal("config delete kept the token in memory")
	}
	env.configure() // the same credentials
	if resp, err := env.read("token/store"); errorText(resp, err) != "" {
		t.Errorf("read after the config was re-created: %s", errorText(resp, err))
	}
	if n := env.naver.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (the first verification and the first read): the tokens had 2 hours left", n)
	}
	env.assertCompliant()
}

// Promise: "A handed-back token never gains life ... never a dead token"; "Naver is asked
// only when it must issue a new token". A config write that changes only proxy_url runs
// verify_connection, which asks Naver for the SELF token while the cache holds one with an
// hour left (a needless request), and seeds Naver's answer into the cache without the
// handed-back check: in reused-token mode the token is then served for 3 hours while it
// dies at Naver after 1.
func TestProxyChangeVerificationSeedsHandedBackToken(t *testing.T) {
	for _, reused := range []bool{false, true} {
		t.Run(map[bool]string{false: "remaining-life mode", true: "reused-token mode"}[reused], func(t *testing.T) {
			env := newTestEnv(t)
			env.transport = &slowNetwork{clock: env.clock} // straight to the emulator, proxy_url or not
			env.b = env.newBackend()
			env.naver.SetReusedTokenFullLifetime(reused)
			env.configure() // verifies: the SELF token is cached
			env.mustWrite("roles/self", map[string]any{"type": "SELF"})
			first := env.readToken("self")
			env.clock.Advance(2 * time.Hour)

			env.mustWrite("config", map[string]any{"proxy_url": "http://127.0.0.1:3128"})
			env.assertCompliant() // the verification was a needless request

			resp := env.readToken("self")
			if resp.Data["access_token"] != first.Data["access_token"] {
				t.Fatal("expected Naver to hand back the same token")
			}
			if left := time.Duration(resp.Data["expires_in"].(int64)) * time.Second; left > time.Hour+time.Second {
				t.Errorf("token served with expires_in %s (lease %s); it dies at Naver in 1h", left, resp.Secret.TTL)
			}
			env.clock.Advance(time.Hour + time.Minute)
			r, err := env.read("token/self")
			if err == nil && !r.IsError() && !env.naver.TokenValid(r.Data["access_token"].(string)) {
				t.Errorf("served a token Naver no longer accepts, expires_in %v", r.Data["expires_in"])
			}
		})
	}
}

// Promise: "Back-offs and tokens belong to the credentials they were made with: a failure of
// the old secret never delays the new one". pathConfigWrite purges (new generation) before it
// makes the new config current; a read in between still uses the old config, but its keyState
// is of the new generation, so its failure's back-off is then obeyed by the new credentials.
func TestOldCredentialsFailureDuringPurgeNeverBlocksNewOnes(t *testing.T) {
	env := newTestEnv(t)
	hs := &hookStorage{Storage: env.storage}
	env.storage = hs
	env.b = env.newBackend()
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0, "background_refresh": false})
	env.mustWrite("roles/a", map[string]any{"type": "SELLER", "account_id": "ncp_a"})
	env.mustWrite("roles/b", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("a") // a stored token: the purge has something to retire

	// The operator re-issued the secret in the API center and now writes it to Vault.
	env.naver.SetClientSecret(testClientID, otherSecret)
	blocked, release := hs.arm("put", tokenStoragePrefix)
	done := make(chan error, 1)
	go func() {
		resp, err := env.rawRequest(logical.UpdateOperation, "config", map[string]any{"client_secret": otherSecret, "verify_connection": false})
		if err == nil && resp.IsError() {
			err = resp.Error()
		}
		done <- err
	}()
	<-blocked // the write is purging the old tokens
	resp, err := env.read("token/b")
	t.Logf("read during the write (old config): %d %s", httpStatus(resp, err), errorText(resp, err))
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	resp, err = env.read("token/b")
	if msg := errorText(resp, err); msg != "" {
		t.Errorf("the new credentials obeyed the old ones' back-off: %s", msg)
	}
	// The read during the write is made with the old secret (a failure) or, once the new
	// config is in force, the new one: one or two requests, never one more.
	if n := env.requestsFor("SELLER", testAccount); n < 1 || n > 2 {
		t.Errorf("%d requests for the key, want 1 or 2", n)
	}
}

// Promise: "Naver is asked only when it must issue a new token"; Invalidate "drops the
// in-memory copy". An invalidation of config with unchanged credentials (a performance
// secondary seeing the primary rewrite the config, e.g. an idempotent Terraform apply)
// bumps the cache generation, so the token a renewal in flight gets is published neither in
// memory nor in storage; the next read asks Naver again while the token has 3 hours left.
func TestConfigInvalidationKeepsInFlightToken(t *testing.T) {
	tests := []struct {
		name   string
		reused bool          // emulator's reused-token mode
		later  time.Duration // when the next read comes after the discarded renewal
	}{
		// The next read asks while the discarded token has 3 hours left: a needless request.
		{"next read at once", false, 0},
		// The next read comes after the stored (old) token expired: Naver hands back the
		// discarded token, unknown to the cache, with expires_in 10800; it is served with 3h
		// though it dies in 2h20m (a dead token for the last 40 minutes of its lease).
		{"next read after the old token expired, reused-token mode", true, 40 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			net := &slowNetwork{clock: env.clock}
			env.useTransport(net)
			env.naver.SetReusedTokenFullLifetime(tt.reused)
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"verify_connection": false, "max_retries": 0, "background_refresh": false})
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
			env.readToken("store")
			env.clock.Advance(2*time.Hour + 31*time.Minute)

			net.release = make(chan struct{})
			readDone := make(chan *logical.Response, 1)
			go func() {
				resp, _ := env.rawRequest(logical.ReadOperation, "token/store", nil)
				readDone <- resp
			}()
			waitFor(t, func() bool { return net.flying.Load() == 1 })
			env.b.invalidate(context.Background(), configStorageKey) // same config in storage
			close(net.release)
			renewed := <-readDone
			if renewed == nil || renewed.IsError() {
				t.Fatalf("the renewing read failed: %v", renewed)
			}
			renewedAt := env.clock.Now()

			env.clock.Advance(tt.later)
			resp := env.readToken("store")
			if !tt.reused {
				env.assertCompliant()
				if req, issued := env.requestsFor("SELLER", testAccount), env.naver.IssuedTokens(); req != issued {
					t.Errorf("%d requests for %d new tokens: the renewed token was discarded and asked for again", req, issued)
				}
				return
			}
			if resp.Data["access_token"] != renewed.Data["access_token"] {
				t.Fatal("expected Naver to hand back the discarded token")
			}
			realLeft := renewedAt.Add(3 * time.Hour).Sub(env.clock.Now())
			if left := time.Duration(resp.Data["expires_in"].(int64)) * time.Second; left > realLeft {
				t.Errorf("token served with expires_in %s (lease %s); it dies at Naver in %s", left, resp.Secret.TTL, realLeft)
			}
			env.clock.Advance(realLeft + time.Minute)
			r, err := env.read("token/store")
			if err == nil && !r.IsError() && !env.naver.TokenValid(r.Data["access_token"].(string)) {
				t.Errorf("served a token Naver no longer accepts, expires_in %v", r.Data["expires_in"])
			}
		})
	}
}

// Promise: "Single flight. However many reads arrive for a key at once, one request goes to
// Naver" (Naver penalises concurrent token requests). The flight key includes the cache
// generation, so a read after a credential change starts a second request for the same key
// while the one made with the old credentials is still at Naver.
func TestCredentialChangeMidFlightSendsNoConcurrentRequests(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Delay: time.Second}) // a slow answer
	oldDone := make(chan struct{})
	go func() {
		defer close(oldDone)
		env.rawRequest(logical.ReadOperation, "token/store", nil)
	}()
	waitFor(t, func() bool { return env.naver.Stats().Keys[testClientID+"|SELLER|"+testAccount].InFlight == 1 })

	env.naver.SetClientSecret(testClientID, otherSecret)
	env.mustWrite("config", map[string]any{"client_secret": otherSecret, "verify_connection": false})
	env.readToken("store")
	<-oldDone
	if m := env.naver.MaxInFlight(testClientID, "SELLER", testAccount); m > 1 {
		t.Errorf("%d token requests for one key at Naver at once", m)
	}
	env.assertCompliant()
}
