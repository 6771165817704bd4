package navercommerce

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/testproxy"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// The tests here talk to Naver the way users deploy the plugin: HTTPS through an
// authenticating proxy, on the plugin's real transport (no injected RoundTripper). They use
// proxy_url: Go reads HTTPS_PROXY once per process and never proxies loopback targets, so
// HTTPS_PROXY is tested against a real Vault (acceptance/proxy_test.go).

const (
	proxyUser     = "vault-egress"
	proxyPassword = "Pr0xy-pa55-c0ffee" // no log, error or read may show it
)

// newTLSTestEnv is newTestEnv with the emulator on HTTPS. With trusted, the backend's
// transport trusts the emulator's certificate; otherwise it has only the system's roots.
func newTLSTestEnv(t *testing.T, trusted bool) *testEnv {
	t.Helper()
	clock := newFakeClock()
	naver := navercommercetest.NewTLSServer(navercommercetest.Config{
		Applications: []navercommercetest.Application{{ClientID: testClientID, ClientSecret: testSecret}},
		Now:          clock.Now,
	})
	t.Cleanup(naver.Close)
	env := &testEnv{t: t, clock: clock, naver: naver, storage: &logical.InmemStorage{}}
	var tlsConfig *tls.Config
	if trusted {
		pool := x509.NewCertPool()
		pool.AddCert(naver.Certificate())
		tlsConfig = &tls.Config{RootCAs: pool}
	}
	env.b = newTLSBackend(env, tlsConfig)
	t.Cleanup(func() {
		logs := env.logs.String()
		if !strings.Contains(logs, "naver token response") && env.naver.TokenRequests() > 0 {
			t.Error("the backend log was not captured")
		}
		assertNoSecrets(t, logs, append(env.tokens, proxyPassword)...)
	})
	return env
}

// newTLSBackend is testEnv.newBackend with a TLS config for the real transport: a fresh
// backend (a restart) on the env's storage, with a fresh connection pool.
func newTLSBackend(env *testEnv, tlsConfig *tls.Config) *backend {
	env.t.Helper()
	b := newBackend(backendOptions{now: env.clock.Now, tlsConfig: tlsConfig})
	conf := logical.TestBackendConfig()
	conf.StorageView = env.storage
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: &env.logs, Level: hclog.Trace})
	if err := b.Setup(context.Background(), conf); err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { b.Clean(context.Background()) })
	return b
}

func startTestProxy(t *testing.T) *testproxy.Proxy {
	return testproxy.StartT(t, testproxy.Options{User: proxyUser, Password: proxyPassword})
}

// hostOf is the host:port of a URL, as a CONNECT request names it.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestProxyHTTPSWithBasicAuth(t *testing.T) {
	env := newTLSTestEnv(t, true)
	proxy := startTestProxy(t)
	if !strings.HasPrefix(env.naver.URL, "https://") {
		t.Fatalf("emulator URL %s is not HTTPS", env.naver.URL)
	}

	// The config write verifies the credentials through the proxy.
	env.mustWrite("config", map[string]any{
		"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "proxy_url": proxy.URL,
	})
	if n := env.requestsFor("SELF", ""); n != 1 {
		t.Errorf("verification made %d SELF requests, want 1", n)
	}
	if got, want := proxy.Targets(), hostOf(t, env.naver.URL); proxy.Tunnels() != 1 || len(got) != 1 || got[0] != want {
		t.Errorf("proxy opened %d tunnels to %v, want 1 to %s", proxy.Tunnels(), got, want)
	}

	// A read shows the proxy URL with the password redacted.
	resp, err := env.read("config")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Data["proxy_url"], proxy.URLWith(proxyUser, "xxxxx"); got != want {
		t.Errorf("config proxy_url = %v, want %s", got, want)
	}
	for k, v := range resp.Data {
		if s, ok := v.(string); ok && strings.Contains(s, proxyPassword) {
			t.Errorf("config read shows the proxy password in %s", k)
		}
	}

	// A token read goes through the proxy: over the kept-alive tunnel, so bytes move.
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	before := proxy.BytesUpstream()
	env.readToken("store")
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("emulator saw %d SELLER requests, want 1", n)
	}
	if proxy.BytesUpstream() <= before {
		t.Error("the token request did not go through the proxy's tunnel")
	}

	// A restarted backend (a fresh connection pool) opens a new tunnel for a new key.
	env.b = newTLSBackend(env, env.b.tlsConfig)
	env.mustWrite("roles/other", map[string]any{"type": "SELLER", "account_id": "ncp_other"})
	env.readToken("other")
	if n := env.requestsFor("SELLER", "ncp_other"); n != 1 {
		t.Errorf("emulator saw %d requests for the second account, want 1", n)
	}
	if proxy.Tunnels() != 2 {
		t.Errorf("proxy opened %d tunnels, want 2", proxy.Tunnels())
	}
	if proxy.Refused() != 0 {
		t.Errorf("proxy refused %d requests carrying the right password", proxy.Refused())
	}
	env.assertCompliant()
}

// A wrong proxy password fails clearly — the proxy's 407 — and shows no password.
func TestProxyWrongPassword(t *testing.T) {
	tests := []struct {
		name string
		// run makes the request that must fail, with the proxy's wrong-password URL.
		run func(env *testEnv, wrongURL string) (*logical.Response, error)
		// staysGood: the good proxy_url is still stored afterwards (a refused verification
		// stores nothing).
		staysGood bool
	}{
		{
			name: "config write verifies and keeps the old config",
			run: func(env *testEnv, wrongURL string) (*logical.Response, error) {
				return env.write("config", map[string]any{"proxy_url": wrongURL})
			},
			staysGood: true,
		},
		{
			name: "token read",
			run: func(env *testEnv, wrongURL string) (*logical.Response, error) {
				env.mustWrite("config", map[string]any{"proxy_url": wrongURL, "verify_connection": false})
				env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
				return env.read("token/store")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTLSTestEnv(t, true)
			proxy := startTestProxy(t)
			env.mustWrite("config", map[string]any{
				"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"proxy_url": proxy.URL, // max_retries: the default, 2
			})
			requests := env.naver.TokenRequests()
			const wrongPassword = "wr0ng-pa55-beef"
			resp, err := tc.run(env, proxy.URLWith(proxyUser, wrongPassword))
			msg := errorText(resp, err)
			if msg == "" {
				t.Fatal("the request succeeded with a wrong proxy password")
			}
			for _, want := range []string{"proxy " + proxy.Addr + " refused", "HTTP 407 Proxy Authentication Required", "proxy_url"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			// Naver was not reached: a gateway error, like any other failure on the way.
			if status := httpStatus(resp, err); status != http.StatusBadGateway {
				t.Errorf("HTTP %d, want 502", status)
			}
			for _, secret := range []string{wrongPassword, proxyPassword} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q shows a proxy password", msg)
				}
				if strings.Contains(env.logs.String(), secret) {
					t.Error("the backend log shows a proxy password")
				}
			}
			assertNoSecrets(t, msg)
			// A refusal of the credentials is not retried: it would only spend the budget.
			if proxy.Refused() != 1 {
				t.Errorf("the proxy refused %d attempts, want 1", proxy.Refused())
			}
			if n := env.naver.TokenRequests(); n != requests {
				t.Errorf("%d token requests reached the emulator past the refusing proxy", n-requests)
			}
			resp, err = env.read("config")
			if err != nil {
				t.Fatal(err)
			}
			want := proxy.URLWith(proxyUser, "xxxxx") // the same shape either way...
			if got := resp.Data["proxy_url"]; got != want {
				t.Errorf("config proxy_url = %v, want %s", got, want)
			}
			// ...so check what is stored: the old URL when verification refused the write.
			stored, err := readConfig(context.Background(), env.storage)
			if err != nil {
				t.Fatal(err)
			}
			if got := stored.ProxyURL == proxy.URL; got != tc.staysGood {
				t.Errorf("stored proxy_url is the good one: %v, want %v", got, tc.staysGood)
			}
		})
	}
}

// A certificate the plugin does not trust fails with a certificate error, directly or
// through the proxy: never a silent fallback to plain HTTP or an unverified connection.
func TestProxyUntrustedCertificate(t *testing.T) {
	for _, viaProxy := range []bool{false, true} {
		name := "direct"
		if viaProxy {
			name = "through the proxy"
		}
		t.Run(name, func(t *testing.T) {
			env := newTLSTestEnv(t, false)
			proxy := startTestProxy(t)
			config := map[string]any{
				"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "max_retries": 0,
			}
			if viaProxy {
				config["proxy_url"] = proxy.URL
			}
			resp, err := env.write("config", config)
			msg := errorText(resp, err)
			if !strings.Contains(msg, "certificate") {
				t.Fatalf("error %q is not a certificate error", msg)
			}
			assertNoSecrets(t, msg, proxyPassword)
			if n := env.naver.TokenRequests(); n != 0 {
				t.Errorf("%d token requests reached the emulator over an untrusted connection", n)
			}
			if wantTunnels := map[bool]int{false: 0, true: 1}[viaProxy]; proxy.Tunnels() != wantTunnels {
				t.Errorf("proxy opened %d tunnels, want %d", proxy.Tunnels(), wantTunnels)
			}
			if cfg, _ := readConfig(context.Background(), env.storage); cfg != nil {
				t.Error("the config was stored although verification failed")
			}
		})
	}
}
