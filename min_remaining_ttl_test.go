package navercommerce

import (
	"net/http"
	"strings"
	"testing"
	"time"

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
