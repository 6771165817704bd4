//go:build acceptance

package acceptance

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestConfigRolesTokenRules checks every config, roles and token rule of the core issue
// through the HTTP API of a real Vault server: what is refused (400, naming the field,
// nothing stored), what is accepted, and what a token read returns.
func TestConfigRolesTokenRules(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	// These rules are checked by sending Naver many refused and verification requests for one
	// SELF key within minutes, on purpose: more than the default hourly budget allows.
	good := []string{"client_id=" + em.ClientID, "client_secret=" + em.ClientSecret, "base_url=" + em.URL, "max_token_requests_per_hour=60"}

	readConfig := func(t *testing.T) map[string]any {
		t.Helper()
		s, err := v.api.Logical().Read("navercommerce/config")
		if err != nil {
			t.Fatalf("read config: %v", err)
		}
		if s == nil {
			return nil
		}
		return s.Data
	}
	// with replaces or adds fields of good.
	with := func(kv ...string) []string {
		out := append([]string(nil), good...)
		for _, p := range kv {
			k, _, _ := strings.Cut(p, "=")
			replaced := false
			for i, q := range out {
				if strings.HasPrefix(q, k+"=") {
					out[i], replaced = p, true
				}
			}
			if !replaced {
				out = append(out, p)
			}
		}
		return out
	}
	without := func(field string) []string {
		var out []string
		for _, p := range good {
			if !strings.HasPrefix(p, field+"=") {
				out = append(out, p)
			}
		}
		return out
	}

	type badWrite struct {
		name  string
		kv    []string
		field string // the message must name it
	}
	badConfigs := []badWrite{
		{"no client_id", without("client_id"), "client_id"},
		{"client_id with a space", with("client_id=a b"), "client_id"},
		{"client_id too long for bcrypt", with("client_id=" + strings.Repeat("c", 80)), "client_id"},
		{"no client_secret", without("client_secret"), "client_secret"},
		{"client_secret not a salt", with("client_secret=not-a-bcrypt-salt"), "client_secret"},
		{"client_secret too short", with("client_secret=$2a$04$QKLnou1D2cSH19Pia30bc"), "client_secret"},
		{"client_secret too long", with("client_secret=$2a$04$QKLnou1D2cSH19Pia30bcuu"), "client_secret"},
		{"client_secret one-digit cost", with("client_secret=$2a$4$QKLnou1D2cSH19Pia30bcuX"), "client_secret"},
		{"client_secret unknown variant", with("client_secret=$2c$04$QKLnou1D2cSH19Pia30bcu"), "client_secret"},
		{"client_secret outside the bcrypt alphabet", with("client_secret=$2a$04$QKLnou1D2cSH19Pia30b!u"), "client_secret"},
		{"base_url plain http to another host", with("base_url=http://api.commerce.naver.com/external"), "base_url"},
		{"base_url ftp", with("base_url=ftp://127.0.0.1/external"), "base_url"},
		{"base_url relative", with("base_url=api.commerce.naver.com/external"), "base_url"},
		{"base_url with a query", with("base_url=https://api.commerce.naver.com/external?x=1"), "base_url"},
		{"base_url with user info", with("base_url=https://u:p@api.commerce.naver.com/external"), "base_url"},
		{"request_timeout zero", with("request_timeout=0"), "request_timeout"},
		{"request_timeout above 60s", with("request_timeout=61s"), "request_timeout"},
		{"request_timeout not a duration", with("request_timeout=soon"), "request_timeout"},
		{"max_retries negative", with("max_retries=-1"), "max_retries"},
		{"max_retries above 5", with("max_retries=6"), "max_retries"},
		{"proxy_url with another scheme", with("proxy_url=ftp://proxy.example.com"), "proxy_url"},
		{"verify_connection not a bool", with("verify_connection=maybe"), "verify_connection"},
		{"unknown field", with("clientsecret=x"), "clientsecret"},
	}

	t.Run("config refused on create, nothing stored", func(t *testing.T) {
		for _, c := range badConfigs {
			_, err := v.api.Logical().Write("navercommerce/config", kvMap(c.kv))
			t.Run(c.name, func(t *testing.T) {
				requireStatus(t, err, 400, c.field)
				// An error never quotes the secret it refuses.
				if secret, _ := kvMap(c.kv)["client_secret"].(string); len(secret) > 10 && strings.Contains(err.Error(), secret[7:]) {
					t.Errorf("the error quotes the client secret: %v", err)
				}
			})
			if cfg := readConfig(t); cfg != nil {
				t.Fatalf("%s: a refused write stored a config: %v", c.name, cfg)
			}
		}
		if n := em.stats(t).TokenRequests; n != 0 {
			t.Errorf("refused config writes sent %d token requests to Naver", n)
		}
	})

	t.Run("config accepted, secret trimmed and never read back", func(t *testing.T) {
		// White space around the secret is trimmed: the verification would fail otherwise.
		v.write(t, "navercommerce/config", with("client_secret=  "+em.ClientSecret+"\n", "base_url="+em.URL+"/", "request_timeout=15s", "max_retries=3")...)
		cfg := normalise(readConfig(t))
		want := map[string]any{"client_id": em.ClientID, "base_url": em.URL, "request_timeout": "15", "max_retries": "3", "proxy_url": ""}
		for k, w := range want {
			if cfg[k] != w {
				t.Errorf("config %s = %v, want %v", k, cfg[k], w)
			}
		}
		if _, ok := cfg["client_secret"]; ok {
			t.Errorf("reading the config returns client_secret")
		}
		for k, x := range cfg {
			if s, ok := x.(string); ok && strings.Contains(s, em.ClientSecret[7:]) {
				t.Errorf("config field %s holds the client secret", k)
			}
		}
		if n := em.stats(t).Keys[em.key("SELF", "")].Requests; n != 1 {
			t.Errorf("verify_connection sent %d SELF token requests, want 1", n)
		}
		// Other loopback spellings are allowed for plain http too (on a mount of their own,
		// without verification, so the main mount's cache stays as it is).
		v.enable(t, "navercommerce-loopback")
		for _, u := range []string{"http://localhost:1/external", "http://[::1]:1/external", "http://127.0.0.2:1/external", "https://api.commerce.naver.com/partner"} {
			v.write(t, "navercommerce-loopback/config", with("base_url="+u, "verify_connection=false")...)
			s, err := v.api.Logical().Read("navercommerce-loopback/config")
			if err != nil || s == nil || s.Data["base_url"] != u {
				t.Errorf("base_url %s: read back %v, %v", u, s, err)
			}
		}
		// A proxy password is redacted when the config is read back.
		const proxyPassword = "proxy-pw-9f8e7d"
		noteSecret(proxyPassword, "the proxy password")
		v.write(t, "navercommerce-loopback/config", "proxy_url=http://user:"+proxyPassword+"@127.0.0.1:3128", "verify_connection=false")
		if s, err := v.api.Logical().Read("navercommerce-loopback/config"); err != nil || s == nil {
			t.Fatalf("read config: %v", err)
		} else if p, _ := s.Data["proxy_url"].(string); strings.Contains(p, proxyPassword) || !strings.Contains(p, "127.0.0.1:3128") {
			t.Errorf("proxy_url reads back as %q: want it with the password redacted", p)
		}
	})

	t.Run("config refused on update, old config kept", func(t *testing.T) {
		before := readConfig(t)
		for _, c := range badConfigs {
			if strings.HasPrefix(c.name, "no ") {
				continue // an update may leave fields out
			}
			_, err := v.api.Logical().Write("navercommerce/config", kvMap(c.kv))
			t.Run(c.name, func(t *testing.T) { requireStatus(t, err, 400, c.field) })
		}
		if after := readConfig(t); !reflect.DeepEqual(after, before) {
			t.Fatalf("refused updates changed the config: %v → %v", before, after)
		}
	})

	t.Run("verify_connection refuses wrong credentials", func(t *testing.T) {
		before := readConfig(t)
		tokBefore := v.readToken(t, "navercommerce", roleFor(t, v, "SELF", ""))
		// The right emulator with a secret it does not know.
		_, err := v.api.Logical().Write("navercommerce/config", kvMap(with("client_secret="+newClientSecret())))
		requireStatus(t, err, 400, "verify_connection", "403")
		// Another "Naver" that knows the client under another secret.
		other := startEmulator(t, emulatorOpts{ClientID: em.ClientID})
		_, err = v.api.Logical().Write("navercommerce/config", kvMap(with("base_url="+other.URL)))
		requireStatus(t, err, 400, "verify_connection")
		// Without the secret, base_url cannot be pointed elsewhere: nothing is sent there.
		_, err = v.api.Logical().Write("navercommerce/config", map[string]any{"base_url": other.URL})
		requireStatus(t, err, 400, "client_secret is required when base_url changes")
		if got := other.stats(t).Keys[other.key("SELF", "")].Requests; got != 1 {
			t.Errorf("the other emulator saw %d SELF requests, want 1", got)
		}
		if after := readConfig(t); !reflect.DeepEqual(after, before) {
			t.Fatalf("a refused verification changed the config: %v → %v", before, after)
		}
		// The old config and its cached tokens still serve.
		tokAfter := v.readToken(t, "navercommerce", roleFor(t, v, "SELF", ""))
		if tokAfter.AccessToken != tokBefore.AccessToken || !em.valid(t, tokAfter.AccessToken) {
			t.Errorf("after a refused config write the engine serves another or an invalid token")
		}
		// Naver failing or unreachable during the verification: 502, nothing stored.
		em.fault(t, map[string]any{"status": 503, "count": 10})
		_, err = v.api.Logical().Write("navercommerce/config", kvMap(with("client_secret="+newClientSecret(), "max_retries=0")))
		requireStatus(t, err, 502, "verify_connection", "503")
		em.reset(t)
		_, err = v.api.Logical().Write("navercommerce/config", kvMap(with("base_url=http://127.0.0.1:1/external")))
		requireStatus(t, err, 502, "verify_connection", "did not answer")
		if after := readConfig(t); !reflect.DeepEqual(after, before) {
			t.Fatalf("a failed verification changed the config: %v → %v", before, after)
		}
		// verify_connection=false stores credentials Naver refuses; token reads then fail with 400.
		v.write(t, "navercommerce/config", with("base_url="+other.URL, "verify_connection=false")...)
		_, err = v.readTokenErr("navercommerce", roleFor(t, v, "SELF", ""))
		requireStatus(t, err, 400, "403")
		v.write(t, "navercommerce/config", good...)
	})

	t.Run("changing credentials drops cached tokens", func(t *testing.T) {
		role := roleFor(t, v, "SELLER", "ncp_rotate")
		first := v.readToken(t, "navercommerce", role)
		// Same application, served by another emulator process: only base_url changes.
		twin := startEmulator(t, emulatorOpts{ClientID: em.ClientID, ClientSecret: em.ClientSecret})
		v.write(t, "navercommerce/config", with("base_url="+twin.URL)...)
		second := v.readToken(t, "navercommerce", role)
		if second.AccessToken == first.AccessToken {
			t.Fatalf("after base_url changed, the token of the old base_url was served")
		}
		if !twin.valid(t, second.AccessToken) {
			t.Errorf("the token served after the change is not valid at the new base_url")
		}
		if n := twin.stats(t).Keys[twin.key("SELLER", "ncp_rotate")].Requests; n != 1 {
			t.Errorf("the new base_url saw %d token requests for the role, want 1", n)
		}
		// Coming back to the first emulator asks it again while its token has 30+ minutes
		// left, which it would count as a violation: start it afresh.
		em.reset(t)
		v.write(t, "navercommerce/config", good...)
	})

	roleRead := func(t *testing.T, name string) map[string]any {
		t.Helper()
		s, err := v.api.Logical().Read("navercommerce/roles/" + name)
		if err != nil {
			t.Fatalf("read role %s: %v", name, err)
		}
		if s == nil {
			return nil
		}
		return normalise(s.Data)
	}

	t.Run("roles refused, nothing stored", func(t *testing.T) {
		for _, c := range []badWrite{
			{"no type", []string{"account_id=ncp_x"}, "type"},
			{"unknown type", []string{"type=BUYER"}, "type"},
			{"SELLER without account_id", []string{"type=SELLER"}, "account_id"},
			{"SELF with account_id", []string{"type=SELF", "account_id=ncp_x"}, "account_id"},
			{"account_id with a space", []string{"type=SELLER", "account_id=ncp x"}, "account_id"},
			{"account_id with a control character", []string{"type=SELLER", "account_id=ncp\x01x"}, "account_id"},
			{"account_id of 129 characters", []string{"type=SELLER", "account_id=" + strings.Repeat("a", 129)}, "account_id"},
			{"both account_id and allowed_account_ids", []string{"type=SELLER", "account_id=ncp_x", "allowed_account_ids=ncp_*"}, "allowed_account_ids"},
			{"allowed_account_ids with a space", []string{"type=SELLER", "allowed_account_ids=ncp_a,ncp b"}, "allowed_account_ids"},
			{"SELF with allowed_account_ids", []string{"type=SELF", "allowed_account_ids=ncp_*"}, "allowed_account_ids"},
			{"negative ttl", []string{"type=SELF", "ttl=-5"}, "ttl"},
			{"ttl not a duration", []string{"type=SELF", "ttl=later"}, "ttl"},
			{"unknown field", []string{"type=SELF", "acount_id=x"}, "acount_id"},
		} {
			_, err := v.api.Logical().Write("navercommerce/roles/bad", kvMap(c.kv))
			t.Run(c.name, func(t *testing.T) { requireStatus(t, err, 400, c.field) })
			if r := roleRead(t, "bad"); r != nil {
				t.Fatalf("%s: a refused write stored a role: %v", c.name, r)
			}
		}
		if list, err := v.api.Logical().List("navercommerce/roles"); err != nil {
			t.Fatal(err)
		} else if list != nil && strings.Contains(fmt.Sprint(list.Data["keys"]), "bad") {
			t.Fatalf("refused writes left a role in the list: %v", list.Data["keys"])
		}
	})

	t.Run("roles accepted, updated, listed, deleted", func(t *testing.T) {
		v.write(t, "navercommerce/roles/r1", "type=seller", "account_id="+strings.Repeat("a", 128), "ttl=1h")
		if got, want := roleRead(t, "r1"), map[string]any{"type": "SELLER", "account_id": strings.Repeat("a", 128), "allowed_account_ids": []any{}, "ttl": "3600", "lease": true, "min_remaining_ttl": "0", "max_new_accounts_per_hour": "0"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("role r1 = %v, want %v", got, want)
		}
		// An update changes only what it names.
		v.write(t, "navercommerce/roles/r1", "ttl=90")
		if got := roleRead(t, "r1"); got["type"] != "SELLER" || got["ttl"] != "90" {
			t.Fatalf("after updating ttl, role r1 = %v", got)
		}
		// A SELLER role becomes SELF only when account_id is cleared in the same write.
		_, err := v.api.Logical().Write("navercommerce/roles/r1", map[string]any{"type": "SELF"})
		requireStatus(t, err, 400, "account_id")
		v.write(t, "navercommerce/roles/r1", "type=Self", "account_id=")
		if got := roleRead(t, "r1"); got["type"] != "SELF" || got["account_id"] != "" {
			t.Fatalf("role r1 = %v, want SELF without account_id", got)
		}
		list, err := v.api.Logical().List("navercommerce/roles")
		if err != nil || list == nil || !strings.Contains(fmt.Sprint(list.Data["keys"]), "r1") {
			t.Fatalf("roles list = %v, %v", list, err)
		}
		if _, err := v.api.Logical().Delete("navercommerce/roles/r1"); err != nil {
			t.Fatal(err)
		}
		if r := roleRead(t, "r1"); r != nil {
			t.Fatalf("a deleted role reads back: %v", r)
		}
		_, err = v.readTokenErr("navercommerce", "r1")
		requireStatus(t, err, 400, "r1")
	})

	t.Run("token of an unknown role", func(t *testing.T) {
		_, err := v.readTokenErr("navercommerce", "nosuchrole")
		requireStatus(t, err, 400, `"nosuchrole" does not exist`)
	})

	t.Run("token of an unconfigured mount", func(t *testing.T) {
		v.enable(t, "navercommerce-empty")
		v.write(t, "navercommerce-empty/roles/x", "type=SELF")
		_, err := v.readTokenErr("navercommerce-empty", "x")
		requireStatus(t, err, 400, "not configured")
	})

	t.Run("token lease is the remaining life, capped by role ttl and mount max", func(t *testing.T) {
		role := roleFor(t, v, "SELLER", "ncp_lease")
		tok := v.readToken(t, "navercommerce", role)
		if tok.LeaseDuration < 3*3600-60 || tok.LeaseDuration > 3*3600 || int64(tok.LeaseDuration) < tok.ExpiresIn-1 || int64(tok.LeaseDuration) > tok.ExpiresIn+1 {
			t.Errorf("lease_duration %d for a token with %d s left (of 10800)", tok.LeaseDuration, tok.ExpiresIn)
		}
		if tok.Renewable {
			t.Errorf("the lease is renewable")
		}
		if _, err := v.api.Sys().Renew(tok.LeaseID, 60); err == nil {
			t.Errorf("renewing a token lease succeeded")
		}

		v.write(t, "navercommerce/roles/capped", "type=SELLER", "account_id=ncp_lease", "ttl=60")
		capped := v.readToken(t, "navercommerce", "capped")
		if capped.LeaseDuration != 60 {
			t.Errorf("role ttl=60: lease_duration = %d", capped.LeaseDuration)
		}
		if capped.AccessToken != tok.AccessToken || capped.ExpiresIn < 3*3600-60 {
			t.Errorf("roles of the same account must share the token, and ttl caps only the lease (expires_in %d)", capped.ExpiresIn)
		}

		// A mount whose max lease TTL is 120 s.
		v.enable(t, "navercommerce-cap")
		v.cli(t, "secrets", "tune", "-max-lease-ttl=120s", "navercommerce-cap")
		v.write(t, "navercommerce-cap/config", append(good, "verify_connection=false")...)
		v.write(t, "navercommerce-cap/roles/x", "type=SELLER", "account_id=ncp_cap")
		mc := v.readToken(t, "navercommerce-cap", "x")
		if mc.LeaseDuration > 120 || mc.LeaseDuration < 110 {
			t.Errorf("mount max_lease_ttl=120s: lease_duration = %d", mc.LeaseDuration)
		}

		if n := em.stats(t).Keys[em.key("SELLER", "ncp_lease")].Requests; n != 1 {
			t.Errorf("two roles of one account caused %d token requests, want 1", n)
		}
	})

	t.Run("tokens work at Naver, SELF sends no account_id", func(t *testing.T) {
		self := v.readToken(t, "navercommerce", roleFor(t, v, "SELF", ""))
		seller := v.readToken(t, "navercommerce", roleFor(t, v, "SELLER", "ncp_api"))
		for _, c := range []struct {
			tok           token
			typ, accountI string
		}{{self, "SELF", ""}, {seller, "SELLER", "ncp_api"}} {
			if c.tok.Type != c.typ || c.tok.AccountID != c.accountI || c.tok.TokenType != "Bearer" {
				t.Errorf("token data: type %q account_id %q token_type %q", c.tok.Type, c.tok.AccountID, c.tok.TokenType)
			}
			status, body := em.callAPI(t, c.tok.AccessToken)
			if status != 200 || body["type"] != c.typ || body["accountId"] != c.accountI {
				t.Errorf("the emulator's API answered %d %v to the %s token", status, body, c.typ)
			}
			if !em.valid(t, c.tok.AccessToken) {
				t.Errorf("the %s token is not valid at the emulator", c.typ)
			}
		}
		// Revoking a lease is local: the token keeps working.
		if err := v.api.Sys().Revoke(seller.LeaseID); err != nil {
			t.Fatalf("revoking a token lease: %v", err)
		}
		if !em.valid(t, seller.AccessToken) {
			t.Errorf("revoking the lease invalidated the token upstream")
		}
		if vs := em.stats(t).Violations; len(vs) > 0 {
			t.Errorf("the emulator recorded violations: %v", vs)
		}
	})

	t.Run("deleting the config", func(t *testing.T) {
		role := roleFor(t, v, "SELLER", "ncp_delete")
		before := v.readToken(t, "navercommerce", role)
		saved := readConfig(t)
		if _, err := v.api.Logical().Delete("navercommerce/config"); err != nil {
			t.Fatalf("delete config: %v", err)
		}
		if cfg := readConfig(t); cfg != nil {
			t.Fatalf("a deleted config reads back: %v", cfg)
		}
		_, err := v.readTokenErr("navercommerce", role)
		requireStatus(t, err, 400, "not configured")
		// Roles survive; the same config written again serves the stored token, which Naver
		// would hand back anyway (asking again would be a needless request).
		v.write(t, "navercommerce/config", append(good, "request_timeout="+saved["request_timeout"].(json.Number).String(), "max_retries="+saved["max_retries"].(json.Number).String())...)
		after := v.readToken(t, "navercommerce", role)
		if after.AccessToken != before.AccessToken || !em.valid(t, after.AccessToken) {
			t.Errorf("after deleting and rewriting the same config the engine did not serve the stored, valid token")
		}
	})

	t.Run("Naver failures map to 400 and 502", func(t *testing.T) {
		// 500 is retried (max_retries=3 here), then reported as a bad gateway.
		role := roleFor(t, v, "SELLER", "ncp_fail500")
		em.fault(t, map[string]any{"status": 500, "count": 4})
		_, err := v.readTokenErr("navercommerce", role)
		requireStatus(t, err, 502, "HTTP 500", "trace ID")
		if n := em.stats(t).Keys[em.key("SELLER", "ncp_fail500")].Requests; n != 4 {
			t.Errorf("a 500 was tried %d times, want 1 + max_retries (3)", n)
		}
		// A refusal is the caller's to fix: 400, not retried.
		role = roleFor(t, v, "SELLER", "ncp_fail403")
		em.fault(t, map[string]any{"status": 403, "code": "GW.IP_NOT_ALLOWED", "count": 1})
		_, err = v.readTokenErr("navercommerce", role)
		requireStatus(t, err, 400, "HTTP 403", "GW.IP_NOT_ALLOWED")
		if n := em.stats(t).Keys[em.key("SELLER", "ncp_fail403")].Requests; n != 1 {
			t.Errorf("a 403 was tried %d times, want 1", n)
		}
		// request_timeout bounds a read, retries included: Naver hanging gives a 502 in time.
		v.write(t, "navercommerce/config", "request_timeout=2")
		role = roleFor(t, v, "SELLER", "ncp_slow")
		em.fault(t, map[string]any{"delay": "20s", "count": 10})
		start := time.Now()
		_, err = v.readTokenErr("navercommerce", role)
		took := time.Since(start)
		requireStatus(t, err, 502, "request_timeout")
		if took > 5*time.Second {
			t.Errorf("with request_timeout=2s a read against a hanging Naver took %s", took.Round(time.Millisecond))
		}
		em.reset(t)
		v.write(t, "navercommerce/config", "request_timeout=15")
	})
}

// roleFor writes a role named after its type and account (idempotent) and returns its name.
func roleFor(t *testing.T, v *vaultProc, typ, accountID string) string {
	t.Helper()
	name := strings.ToLower(typ)
	kv := []string{"type=" + typ}
	if accountID != "" {
		name += "-" + strings.ReplaceAll(accountID, "_", "-")
		kv = append(kv, "account_id="+accountID)
	}
	v.write(t, "navercommerce/roles/"+name, kv...)
	return name
}

// normalise makes API data comparable: JSON numbers become their text.
func normalise(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if n, ok := x.(interface{ String() string }); ok {
			out[k] = n.String()
		} else {
			out[k] = x
		}
	}
	return out
}
