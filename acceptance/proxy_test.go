//go:build acceptance

package acceptance

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/testproxy"
)

// naverHost is the name the plugin is configured with: not a loopback name, so Go's
// HTTPS_PROXY handling proxies it (it never proxies localhost or 127.0.0.1), and in the
// reserved .test domain. The test proxies map it to the emulator's loopback address, so
// nothing resolves it and nothing leaves the machine.
const naverHost = "naver-emulator.test"

// TestProxyHTTPSToNaver runs the deployment the plugin is made for: Vault reaches Naver
// over HTTPS through an authenticating CONNECT proxy, named by HTTPS_PROXY in the Vault
// server's environment (the plugin process inherits it) or by proxy_url. The emulator
// serves HTTPS with a fresh certificate that Vault trusts through SSL_CERT_FILE. No proxy
// password may appear in a Vault log or the audit log, and reads show it redacted.
func TestProxyHTTPSToNaver(t *testing.T) {
	const account, otherAccount = "ncp_proxy_seller", "ncp_proxy_other"
	// The emulator serves HTTPS with a certificate naming naverHost too. Mounts sharing the
	// application ask for a SELF token each, which Naver would count as needless; these
	// tests are about the network path, not Naver's rules: no penalty.
	em := startEmulator(t, emulatorOpts{AccountIDs: []string{account, otherAccount},
		TLS: true, TLSHostname: naverHost, ExtraArgs: []string{"-penalty=false"}})
	hygiene(t).addLog(em.proc.logPath)
	emAddr := hostPort(t, em.URL)
	hosts := map[string]string{naverHost + ":443": emAddr}

	envPassword, cfgPassword := "env-pa55-"+randomHex(6), "cfg-pa55-"+randomHex(6)
	noteSecret(envPassword, "the HTTPS_PROXY password")
	noteSecret(cfgPassword, "the proxy_url password")
	envProxy := startTestProxy(t, testproxy.Options{User: "vault-env", Password: envPassword, Hosts: hosts})
	cfgProxy := startTestProxy(t, testproxy.Options{User: "vault-cfg", Password: cfgPassword, Hosts: hosts})

	// The server (and so its plugin) sees the proxy and certificate settings given here only,
	// none of the test's own environment.
	v := startDevVaultWith(t, vaultOpts{Env: []string{"HTTPS_PROXY=" + envProxy.URL, "SSL_CERT_FILE=" + em.CertFile}, DropProxyEnv: true})
	v.registerPlugin(t)
	v.enable(t, "navercommerce")
	v.enable(t, "navercommerce-proxied")
	v.enableAudit(t)
	baseURL := "https://" + naverHost + pathOf(t, em.URL)

	t.Run("HTTPS_PROXY", func(t *testing.T) {
		v.write(t, "navercommerce/config", "client_id="+em.ClientID, "client_secret="+em.ClientSecret, "base_url="+baseURL)
		if envProxy.Tunnels() == 0 {
			t.Fatal("the config write's verification did not go through HTTPS_PROXY")
		}
		v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id="+account)
		tunnels, bytes := envProxy.Tunnels(), envProxy.BytesUpstream()
		tok := v.readToken(t, "navercommerce", "store")
		if !em.valid(t, tok.AccessToken) {
			t.Error("the token read through HTTPS_PROXY is not valid at the emulator")
		}
		if n := em.stats(t).Keys[em.key("SELLER", account)].Requests; n != 1 {
			t.Errorf("emulator saw %d requests for the seller, want 1", n)
		}
		// The read reuses the verification's kept-alive tunnel or opens another.
		if envProxy.Tunnels() == tunnels && envProxy.BytesUpstream() == bytes {
			t.Error("the token read did not go through HTTPS_PROXY")
		}
		for _, target := range envProxy.Targets() {
			if target != naverHost+":443" {
				t.Errorf("HTTPS_PROXY tunnelled to %s, want only %s:443", target, naverHost)
			}
		}
		if cfgProxy.Tunnels() != 0 {
			t.Errorf("the proxy_url proxy opened %d tunnels for a mount without proxy_url", cfgProxy.Tunnels())
		}
	})

	t.Run("proxy_url", func(t *testing.T) {
		envTunnels, envBytes := envProxy.Tunnels(), envProxy.BytesUpstream()
		v.write(t, "navercommerce-proxied/config", "client_id="+em.ClientID, "client_secret="+em.ClientSecret,
			"base_url="+baseURL, "proxy_url="+cfgProxy.URL)
		if cfgProxy.Tunnels() == 0 {
			t.Fatal("the config write's verification did not go through proxy_url")
		}
		v.write(t, "navercommerce-proxied/roles/other", "type=SELLER", "account_id="+otherAccount)
		tunnels, bytes := cfgProxy.Tunnels(), cfgProxy.BytesUpstream()
		tok := v.readToken(t, "navercommerce-proxied", "other")
		if !em.valid(t, tok.AccessToken) {
			t.Error("the token read through proxy_url is not valid at the emulator")
		}
		if n := em.stats(t).Keys[em.key("SELLER", otherAccount)].Requests; n != 1 {
			t.Errorf("emulator saw %d requests for the other seller, want 1", n)
		}
		if cfgProxy.Tunnels() == tunnels && cfgProxy.BytesUpstream() == bytes {
			t.Error("the token read did not go through the proxy_url proxy")
		}
		if envProxy.Tunnels() != envTunnels || envProxy.BytesUpstream() != envBytes {
			t.Error("a mount with proxy_url sent requests through HTTPS_PROXY")
		}
		// vault read shows the password redacted.
		var cfg struct {
			Data map[string]any `json:"data"`
		}
		mustJSON(t, v.cli(t, "read", "-format=json", "navercommerce-proxied/config"), &cfg)
		if got, want := cfg.Data["proxy_url"], cfgProxy.URLWith("vault-cfg", "xxxxx"); got != want {
			t.Errorf("vault read config: proxy_url = %v, want %s", got, want)
		}
	})

	t.Run("wrong proxy password", func(t *testing.T) {
		wrong := "wrong-pa55-" + randomHex(6)
		noteSecret(wrong, "a wrong proxy password")
		refused := cfgProxy.Refused()
		_, err := v.api.Logical().Write("navercommerce-proxied/config", map[string]any{
			"proxy_url": cfgProxy.URLWith("vault-cfg", wrong),
		})
		requireStatus(t, err, http.StatusBadGateway, "proxy "+cfgProxy.Addr+" refused", "HTTP 407", "proxy_url")
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), cfgPassword) {
			t.Errorf("the error shows a proxy password: %v", err)
		}
		if n := cfgProxy.Refused() - refused; n != 1 {
			t.Errorf("the proxy refused %d attempts, want 1 (a 407 is not retried)", n)
		}
		// Verification failed, so the old proxy_url stays.
		cfg, err := v.api.Logical().Read("navercommerce-proxied/config")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cfg.Data["proxy_url"], cfgProxy.URLWith("vault-cfg", "xxxxx"); got != want {
			t.Errorf("after the refused write, proxy_url = %v, want %s", got, want)
		}
	})
}

// startTestProxy starts a testproxy.Proxy that the test closes when it ends (after Vault
// stopped: cleanups run last-in first-out, and the proxies start before Vault).
func startTestProxy(t *testing.T, opts testproxy.Options) *testproxy.Proxy {
	return testproxy.StartT(t, opts)
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func pathOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}
