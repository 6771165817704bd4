package navercommerce

import (
	"net/http"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// Seed 44 of the simulator: Naver answered a renewal 429 with "Retry-After: 1", and a read
// two seconds later asked Naver again. Promise (README, Failures): after a failure the key
// backs off (5 s; 30 s after a 429; longer when Naver's Retry-After asks for more) and reads
// in that time share the error. A Retry-After shorter than the key's own back-off does not
// shorten it: Naver tells when it is ready at the earliest, not that asking sooner is safe.
func TestRetryAfterNeverShortensTheBackoff(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		wait       time.Duration
		wantAsked  int
	}{
		{"429, Retry-After 1, 2 s later (seed 44)", http.StatusTooManyRequests, "1", 2 * time.Second, 0},
		{"429, Retry-After 1, 29 s later", http.StatusTooManyRequests, "1", 29 * time.Second, 0},
		{"429, Retry-After 1, 31 s later", http.StatusTooManyRequests, "1", 31 * time.Second, 1},
		{"503, Retry-After 1, 4 s later", http.StatusServiceUnavailable, "1", 4 * time.Second, 0},
		{"503, Retry-After 1, 6 s later", http.StatusServiceUnavailable, "1", 6 * time.Second, 1},
		{"429, Retry-After 120, 60 s later", http.StatusTooManyRequests, "120", time.Minute, 0},
		{"429, Retry-After 120, 121 s later", http.StatusTooManyRequests, "120", 121 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"verify_connection": false, "max_retries": 0})
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
			env.naver.InjectFault(navercommercetest.Fault{Status: tt.status, RetryAfter: tt.retryAfter})
			if resp, err := env.read("token/store"); httpStatus(resp, err) == http.StatusOK {
				t.Fatal("the read Naver refused was served")
			}
			requests := env.requestsFor("SELLER", testAccount)
			env.clock.Advance(tt.wait)
			resp, err := env.read("token/store")
			if asked := env.requestsFor("SELLER", testAccount) - requests; asked != tt.wantAsked {
				t.Errorf("%d token requests %s after the failure (read: %d %q), want %d", asked, tt.wait, httpStatus(resp, err), errorText(resp, err), tt.wantAsked)
			}
			env.assertCompliant()
		})
	}
}
