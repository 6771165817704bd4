package navercommerce

import "github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"

// The decision core's rules, under the names the tests of the plugin use.
const (
	renewConcurrency  = core.RenewConcurrency
	failureBackoff    = core.FailureBackoff
	rateLimitBackoff  = core.RateLimitBackoff
	minAheadLife      = core.MinAheadLife
	maxBreakerBackoff = core.MaxBreakerBackoff
	appWindow         = core.AppWindow
	appBudgetFloor    = core.AppBudgetFloor
	appBudgetPerKey   = core.AppBudgetPerKey
)

var (
	doubling = core.Doubling
)
