package navercommerce

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// Issue 26, item 3: at a hundred sellers a warning must say which seller and which role it
// is about: "renewing token failed" named only the token's type.
func TestWarningsNameTheAccountAndItsRoles(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})
	env.readToken("sellers/ncp_logged")
	env.clock.Advance(2*time.Hour + 40*time.Minute) // in Naver's window
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, Count: 10})
	env.read("token/sellers/ncp_logged")
	env.b.WaitIdle()
	env.periodic(context.Background())
	var line string
	for _, l := range strings.Split(env.logs.String(), "\n") {
		if strings.Contains(l, "renewing token failed") {
			line = l
			break
		}
	}
	if line == "" {
		t.Fatalf("no warning of the failed renewal in:\n%s", env.logs.String())
	}
	for _, want := range []string{"account_id=ncp_logged", `roles=["sellers"]`} {
		if !strings.Contains(line, want) {
			t.Errorf("the warning %q does not say %s", line, want)
		}
	}
}
