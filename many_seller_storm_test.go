package navercommerce

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// README, "Budgets" and "When Naver is down": "every seller is served within 5 minutes of
// Naver's recovery after a 3-minute storm, within 7.5 minutes after a longer one", and of
// max_new_accounts_per_hour: "Honest onboarding of sellers costs nothing of it unless Naver
// refuses them". Sellers who authorised the application, read for the first time through a
// many-seller role while Naver fails with 503, are not accounts Naver refused: the failed
// requests of the storm must not spend the role's bound and lock them out once Naver is back.
func TestManySellerRoleServesNewSellersSoonAfterAStorm(t *testing.T) {
	tests := []struct {
		name   string
		length time.Duration
		within time.Duration
	}{
		{"3-minute storm", 3 * time.Minute, 5 * time.Minute},
		{"15-minute storm", 15 * time.Minute, 7*time.Minute + 30*time.Second},
		{"30-minute storm", 30 * time.Minute, 7*time.Minute + 30*time.Second},
		{"45-minute storm", 45 * time.Minute, 7*time.Minute + 30*time.Second},
		{"1-hour storm", time.Hour, 7*time.Minute + 30*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure()
			env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
			accounts := make([]string, 11) // as TestRetryStormOverManySellersEndsWithEverySellerServed
			for i := range accounts {
				accounts[i] = fmt.Sprintf("ncp_storm%d", i)
			}
			env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "0", Count: 1 << 30})
			recovery := env.clock.Now().Add(tt.length)
			servedAfter := map[string]time.Duration{}
			lastErr := map[string]string{}
			for step := 0; env.clock.Now().Before(recovery.Add(tt.within + time.Minute)); step++ {
				now := env.clock.Now()
				if !now.Before(recovery) {
					env.naver.ClearFaults()
				}
				for _, acct := range accounts {
					resp, err := env.read("token/sellers/" + acct)
					if text := errorText(resp, err); text != "" {
						lastErr[acct] = text
					} else {
						env.tokens = append(env.tokens, resp.Data["access_token"].(string))
						if _, ok := servedAfter[acct]; !ok && !now.Before(recovery) {
							servedAfter[acct] = now.Sub(recovery)
						}
					}
					env.b.WaitIdle()
				}
				if step%2 == 0 {
					env.periodic(context.Background())
					env.b.WaitIdle()
				}
				env.clock.Advance(30 * time.Second)
			}
			for _, acct := range accounts {
				if after, ok := servedAfter[acct]; !ok || after > tt.within {
					t.Errorf("seller %s not served within %s of Naver's recovery (served: %t, after %v); its last error: %s",
						acct, tt.within, ok, after, lastErr[acct])
				}
			}
			env.assertCompliant()
		})
	}
}
