package navercommerce

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// A role's min_remaining_ttl: a read never returns a token with less life left. A token with
// less is renewed before the read returns; when renewing fails, the read fails instead of
// handing a consumer that ignores leases a token that dies before its next read.
func TestMinRemainingTTL(t *testing.T) {
	tests := []struct {
		name       string
		background bool
		minLife    string        // the role's min_remaining_ttl; "" leaves it unset
		left       time.Duration // the cached token's life at the read
		fail       bool          // Naver answers the renewal with a 500
		wantStatus int
		wantNew    bool // the read returns a new token, not the cached one
	}{
		// Today's behaviour, kept when the option is unset.
		{"unset, background: cached token served, renewed behind", true, "", 20 * time.Minute, false, http.StatusOK, false},
		{"unset, renewal fails: cached token served with a warning", false, "", 20 * time.Minute, true, http.StatusOK, false},
		{"unset, renewal fails with 8s left: 502", false, "", 8 * time.Second, true, http.StatusBadGateway, false},
		// The option.
		{"min 25m, background: renewed before the read returns", true, "25m", 20 * time.Minute, false, http.StatusOK, true},
		{"min 25m, no background: renewed before the read returns", false, "25m", 20 * time.Minute, false, http.StatusOK, true},
		{"min 15m, background, 20m left: cached token served", true, "15m", 20 * time.Minute, false, http.StatusOK, false},
		{"min 25m, renewal fails: 502, no short token", false, "25m", 20 * time.Minute, true, http.StatusBadGateway, false},
		{"min 25m, background, renewal fails: 502, no short token", true, "25m", 20 * time.Minute, true, http.StatusBadGateway, false},
		{"min 15m, renewal fails with 20m left: cached token served with a warning", false, "15m", 20 * time.Minute, true, http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"verify_connection": false, "max_retries": 0, "background_refresh": tt.background})
			role := map[string]any{"type": "SELLER", "account_id": testAccount}
			if tt.minLife != "" {
				role["min_remaining_ttl"] = tt.minLife
			}
			env.mustWrite("roles/store", role)
			first := env.readToken("store").Data["access_token"]

			env.clock.Advance(3*time.Hour - tt.left)
			if tt.fail {
				env.naver.InjectFault(navercommercetest.Fault{Status: 500})
			}
			resp, err := env.read("token/store")
			if got := httpStatus(resp, err); got != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", got, errorText(resp, err), tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				msg := errorText(resp, err)
				if !strings.Contains(msg, "HTTP 500") || (tt.minLife != "" && !strings.Contains(msg, "min_remaining_ttl")) {
					t.Errorf("error %q does not say why", msg)
				}
				return
			}
			assertLeaseWithinLife(t, resp)
			left := time.Duration(resp.Data["expires_in"].(int64)) * time.Second
			if tt.minLife != "" {
				minLife, _ := time.ParseDuration(tt.minLife)
				if left < minLife {
					t.Errorf("served a token with %s left, under min_remaining_ttl %s", left, minLife)
				}
			}
			if isNew := resp.Data["access_token"] != first; isNew != tt.wantNew {
				t.Errorf("new token %v (%s left), want %v", isNew, left, tt.wantNew)
			}
			if tt.fail && len(resp.Warnings) == 0 {
				t.Error("a token whose renewal failed was served without a warning")
			}
			env.assertCompliant()
		})
	}
}

// README, min_remaining_ttl: "min_remaining_ttl renews a key whose token is short of the most
// any role reading it asks" and renewal_spread: renewals move "to a point stable for the
// token". Once the only role with min_remaining_ttl is deleted (or lowered to 0), no role
// reading the key asks for 29 minutes, so the key renews at its spread point again. Today
// keyState.minLife only ever rises: the key renews at 29 minutes left forever (until a
// restart), and the spread of that key is lost.
func TestMinRemainingTTLEndsWithItsRole(t *testing.T) {
	for _, how := range []string{"control: never set", "deleted", "lowered to 0"} {
		t.Run(how, func(t *testing.T) {
			env := newTestEnv(t)
			env.spreadRenewals = true
			env.b = env.newBackend()
			acct := spreadAccount(t, 10*time.Minute) // renews with 20 minutes left or less
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"verify_connection": false, "background_refresh": false})
			strict := map[string]any{"type": "SELLER", "account_id": acct, "min_remaining_ttl": "29m"}
			if how == "control: never set" {
				strict["min_remaining_ttl"] = 0
			}
			env.mustWrite("roles/strict", strict)
			env.mustWrite("roles/plain", map[string]any{"type": "SELLER", "account_id": acct})
			env.readToken("strict")
			switch how {
			case "deleted":
				if _, err := env.request(env.b, logical.DeleteOperation, "roles/strict", nil); err != nil {
					t.Fatal(err)
				}
			case "lowered to 0":
				env.mustWrite("roles/strict", map[string]any{"min_remaining_ttl": 0})
			}
			env.periodic(t.Context())

			env.clock.Advance(3*time.Hour - 28*time.Minute) // 28 minutes left: before the key's point
			env.periodic(t.Context())
			env.readToken("plain")
			if n := env.requestsFor("SELLER", acct); n != 1 {
				t.Errorf("%d requests: the key renewed with 28 minutes left for a min_remaining_ttl no role asks any more (its spread point is %s into the window)",
					n, renewSpread(tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: acct}, renewSpreadWidth))
			}
			env.assertCompliant()
		})
	}
}

// README, status key fields: "`fetched_at`, `expires_at`, `renew_at`: when the token was
// requested, expires, and will be renewed". A key read through a role with
// min_remaining_ttl=29m is renewed once less than 29 minutes are left (isDue), but status
// reports renew_at from the spread point alone, up to 20 minutes later than the renewal.
// (The README and the field's help also still say "30 minutes before expiry", which the
// spread made untrue.)
func TestStatusRenewAtHonoursMinRemainingTTL(t *testing.T) {
	env := newTestEnv(t)
	env.spreadRenewals = true
	env.b = env.newBackend()
	acct := spreadAccount(t, 10*time.Minute)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false})
	env.mustWrite("roles/strict", map[string]any{"type": "SELLER", "account_id": acct, "min_remaining_ttl": "29m"})
	env.readToken("strict")
	resp := env.statusList(map[string]any{"account_id": acct})
	keys, _ := resp.Data["keys"].([]map[string]any)
	if len(keys) != 1 {
		t.Fatalf("status keys: %v", resp.Data["keys"])
	}
	parse := func(field string) time.Time {
		switch v := keys[0][field].(type) {
		case time.Time:
			return v
		case string:
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return at
		}
		t.Fatalf("%s: %T %v", field, keys[0][field], keys[0][field])
		return time.Time{}
	}
	expires, renew := parse("expires_at"), parse("renew_at")
	if latest := expires.Add(-29 * time.Minute); renew.After(latest) {
		t.Errorf("renew_at %s is %s before expiry, but the key renews with 29 minutes left (min_remaining_ttl)", renew, expires.Sub(renew))
	}
}
