//go:build acceptance

package acceptance

import (
	"net/http"
	"testing"
	"time"
)

// TestLeaseNeverOutlivesToken: a renewal that fails slowly near the token's expiry must not
// hand out the token it judged servable before the request. Vault turns a lease TTL of 0 or
// less into the mount's default (768 h), which Vault Agent would keep for weeks; the read
// must fail (502) instead, and every lease that is returned stays within the token's life.
func TestLeaseNeverOutlivesToken(t *testing.T) {
	em := startEmulator(t, emulatorOpts{TokenLifetime: 75 * time.Second})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em, "verify_connection=false", "max_retries=0", "request_timeout=30s", "background_refresh=false")
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_lease")

	first := v.readToken(t, "navercommerce", "store")
	checkLease(t, first)
	// The token has 14 s left when the renewal starts; Naver stalls 20 s and then fails.
	time.Sleep(time.Until(first.ExpiresAt.Add(-14 * time.Second)))
	em.fault(t, map[string]any{"delay": "20s", "status": 500})
	tok, err := v.readTokenErr("navercommerce", "store")
	if err == nil {
		checkLease(t, tok)
		t.Fatalf("a renewal that failed after the token expired returned a token (lease %ds, expires_in %d)", tok.LeaseDuration, tok.ExpiresIn)
	}
	requireStatus(t, err, http.StatusBadGateway, "HTTP 500")

	// Once the failure's back-off (5 s) is over and Naver answers again: a new token, with a
	// lease inside its life.
	time.Sleep(6 * time.Second)
	checkLease(t, v.readToken(t, "navercommerce", "store"))
}

func checkLease(t *testing.T, tok token) {
	t.Helper()
	if tok.LeaseDuration < 1 || int64(tok.LeaseDuration) > tok.ExpiresIn {
		t.Errorf("lease_duration %d for a token with expires_in %d", tok.LeaseDuration, tok.ExpiresIn)
	}
	if tok.ExpiresIn < 10 {
		t.Errorf("a token with %ds left was served", tok.ExpiresIn)
	}
}
