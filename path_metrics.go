package navercommerce

import (
	"context"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathMetrics(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "metrics",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathMetricsRead,
				Summary:  "Prometheus metrics of token requests, reads and the cache (text exposition format).",
				// The counters live in the memory of the node that serves token reads: the
				// active one, to which performance standbys forward those reads.
				ForwardPerformanceStandby: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "read",
					OperationSuffix: "metrics",
				},
				Responses: map[int][]framework.Response{
					200: {{
						Description: "Prometheus text exposition format 0.0.4.",
						MediaType:   "text/plain",
					}},
				},
			},
		},
		HelpSynopsis:    "Prometheus metrics of token requests, reads and the cache.",
		HelpDescription: strings.TrimSpace(pathMetricsHelp),
	}
}

const pathMetricsHelp = `
Returns the mount's metrics in Prometheus's text exposition format (text/plain; version=0.0.4),
raw, not wrapped in Vault's JSON. Prometheus scrapes it at /v1/<mount>/metrics with a Vault token
sent as "Authorization: Bearer <token>" (a policy granting read on <mount>/metrics).

  navercommerce_token_requests_total{outcome,code}   requests to Naver: outcome success, refused
                                                     (4xx), rate_limited (429) or failed (5xx, no
                                                     answer); code is Naver's ("" when none,
                                                     "other" for an undocumented one)
  navercommerce_token_reads_total{result}            reads: cached, fetched, stale, failed
  navercommerce_background_renewals_total{outcome}   renewals ahead of reads: success, failure
  navercommerce_budget_refusals_total                requests not sent: hourly budget spent
  navercommerce_cached_keys                          tokens cached with life left
  navercommerce_token_expiry_seconds                 seconds until the first cached token
                                                     expires; absent when none is cached
  navercommerce_token_requests_last_hour_max         the most requests one token sent in the
                                                     last hour
  navercommerce_token_request_budget_per_hour        max_token_requests_per_hour

Counters start at zero when the plugin starts (or reloads). No label carries an account ID, a
token or a secret.
`

func (b *backend) pathMetricsRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	var g metricsGauges
	if st != nil {
		b.tokens.ensureSwept(ctx, req.Storage, st.policy.credentials)
		now := b.now()
		g.budgetPerHour = st.config.maxRequestsPerHour()
		g.appBudgetPerHour = b.tokens.appBudget(&st.policy)
		app := b.tokens.app(st.config.ClientID)
		if err := app.load(ctx, req.Storage); err != nil {
			b.Logger().Warn("reading the application's request counts failed", "error", err)
		}
		g.appRequestsLastHour = app.lastHour(now)
		for _, ks := range b.tokens.status(now, st.policy.credentials, nil) {
			g.maxRequestsLastHour = max(g.maxRequestsLastHour, ks.Requests1h)
			if !ks.ExpiresAt.After(now) {
				continue
			}
			left := ks.ExpiresAt.Sub(now)
			if g.cachedKeys == 0 || left < g.soonestExpiry {
				g.soonestExpiry = left
			}
			g.cachedKeys++
		}
	}
	return &logical.Response{Data: map[string]any{
		logical.HTTPStatusCode:  http.StatusOK,
		logical.HTTPContentType: metricsContentType,
		logical.HTTPRawBody:     b.metrics.exposition(g),
	}}, nil
}
