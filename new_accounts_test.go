package navercommerce

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// max_new_accounts_per_hour (issue 25, item 1; core-changes): "Honest onboarding of sellers
// costs nothing of it unless Naver refuses them." An app onboarding the sellers who
// authorised the application reads them at once, as apps do; every read must be served (or
// wait its turn), none refused with 429 because the others were at Naver at that moment.
func TestConcurrentOnboardingOfAuthorisedSellersIsNotRefused(t *testing.T) {
	const sellers = 30
	accounts := make([]string, sellers)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("ncp_onboard%d", i)
	}
	env := newTestEnvWithApp(t, navercommercetest.Application{ClientID: testClientID, ClientSecret: testSecret, AccountIDs: accounts})
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
	// Naver takes a moment to answer, as it does: the reads overlap.
	env.naver.InjectFault(navercommercetest.Fault{Delay: 50 * time.Millisecond, Count: sellers})

	var wg sync.WaitGroup
	var mu sync.Mutex
	var refused []string
	for _, acct := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.request(env.b, logical.ReadOperation, "token/sellers/"+acct, nil)
			if text := errorText(resp, err); text != "" {
				mu.Lock()
				refused = append(refused, acct+": "+text)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(refused) > 0 {
		t.Errorf("%d of %d authorised sellers read at once were refused; the first: %s", len(refused), sellers, refused[0])
	}
}
