package navercommerce

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

func pathMetrics(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "metrics",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			fieldMetricsFormat: {
				Type:          framework.TypeString,
				Description:   `Empty (default): one field per series, name{labels} → value, which "vault read" prints as a table. "json": Vault's JSON, with the series in "counters" and "gauges", as sys/metrics does. "prometheus": Prometheus's text exposition format, served raw (for a scraper).`,
				AllowedValues: []any{"", metricsFormatJSON, metricsFormatPrometheus},
				Query:         true,
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathMetricsRead,
				Summary:  "Metrics of token requests, reads and the cache: JSON, or Prometheus text with format=prometheus.",
				// The counters live in the memory of the node that serves token reads: the
				// active one, to which performance standbys forward those reads.
				ForwardPerformanceStandby: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "read",
					OperationSuffix: "metrics",
				},
				Responses: map[int][]framework.Response{
					200: {
						{
							Description: "OK: by default one field per series (and timestamp); with format=json the series in counters and gauges; Prometheus text exposition format 0.0.4 with format=prometheus.",
							Fields:      metricsResponseFields(),
						},
						{
							Description: "With format=prometheus: Prometheus text exposition format 0.0.4, raw.",
							MediaType:   "text/plain",
						},
					},
				},
			},
		},
		HelpSynopsis:    "Metrics of token requests, reads and the cache (JSON, or Prometheus text with format=prometheus).",
		HelpDescription: strings.TrimSpace(pathMetricsHelp),
	}
}

// metricsResponseFields declares both JSON answers: the default's series, and format=json's
// counters and gauges.
func metricsResponseFields() map[string]*framework.FieldSchema {
	fields := flatFields()
	fields["timestamp"] = &framework.FieldSchema{Type: framework.TypeTime, Required: true, Description: "When the metrics were taken (RFC 3339, UTC)."}
	fields["counters"] = &framework.FieldSchema{Type: framework.TypeSlice, Description: `format=json: counter series, each {"name", "labels" (an object), "value"}; the names and labels are the Prometheus ones.`}
	fields["gauges"] = &framework.FieldSchema{Type: framework.TypeSlice, Description: `format=json: gauge series, each {"name", "labels" (an object), "value"}.`}
	return fields
}

const (
	fieldMetricsFormat      = "format"
	metricsFormatJSON       = "json"
	metricsFormatPrometheus = "prometheus"
)

const pathMetricsHelp = `
Returns the mount's metrics: by default one field per series, its Prometheus name and labels
(name{label="value"}) → its value, which "vault read" prints as a table; with format=json as
Vault's sys/metrics does, the series in "counters" and "gauges" (each with name, labels and
value); with format=prometheus in Prometheus's text exposition format (text/plain;
version=0.0.4), raw. Prometheus scrapes /v1/<mount>/metrics?format=prometheus with
a Vault token sent as "Authorization: Bearer <token>" (a policy granting read on <mount>/metrics).

  navercommerce_token_requests_total{outcome,code}   requests to Naver: outcome success, refused
                                                     (4xx), rate_limited (429) or failed (5xx, no
                                                     answer); code is Naver's ("" when none,
                                                     "other" for an undocumented one)
  navercommerce_token_reads_total{result}            reads: cached, fetched, stale, failed
  navercommerce_background_renewals_total{outcome}   renewals ahead of reads: success, failure
  navercommerce_budget_refusals_total                requests not sent: hourly budget spent
  navercommerce_cached_keys                          tokens cached with life left
  navercommerce_refused_keys                         seller accounts Naver refused as not
                                                     authorised (status state refused)
  navercommerce_token_expiry_seconds                 seconds until the first cached token
                                                     expires; absent when none is cached
  navercommerce_token_requests_last_hour_max         the most requests one token sent in the
                                                     last hour
  navercommerce_token_request_budget_per_hour        max_token_requests_per_hour

Counters start at zero when the plugin starts (or reloads). No label carries an account ID, a
token or a secret.
`

func (b *backend) pathMetricsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	format := strings.ToLower(strings.TrimSpace(d.Get(fieldMetricsFormat).(string)))
	switch format {
	case "", metricsFormatJSON, metricsFormatPrometheus:
	default:
		return logical.ErrorResponse(fmt.Sprintf("%s: %q is not a format; use %s=%s for Prometheus text, %s=%s for Vault's JSON of counters and gauges, or leave it out for one field per series",
			fieldMetricsFormat, d.Get(fieldMetricsFormat), fieldMetricsFormat, metricsFormatPrometheus, fieldMetricsFormat, metricsFormatJSON)), nil
	}
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	var g metricsGauges
	now := b.now()
	if st != nil {
		b.tokens.ensureSwept(ctx, req.Storage)
		b.tokens.ensureCounts(ctx, req.Storage, st.config.ClientID)
		g.budgetPerHour = st.config.maxRequestsPerHour()
		var app core.AppView
		b.tokens.view(func(m *core.Machine) {
			app = m.App(now)
			m.EachKey(now, nil, func(v core.KeyView) {
				g.maxRequestsLastHour = max(g.maxRequestsLastHour, v.Requests1h)
				if !v.ExpiresAt.After(now) {
					if v.AccountRefused != nil {
						g.refusedKeys++
					}
					return
				}
				left := v.ExpiresAt.Sub(now)
				if g.cachedKeys == 0 || left < g.soonestExpiry {
					g.soonestExpiry = left
				}
				g.cachedKeys++
			})
		})
		g.appBudgetPerHour, g.appRequestsLastHour = app.Budget, app.Requests1h
	}
	if format == metricsFormatPrometheus {
		return &logical.Response{Data: map[string]any{
			logical.HTTPStatusCode:  http.StatusOK,
			logical.HTTPContentType: metricsContentType,
			logical.HTTPRawBody:     b.metrics.exposition(g),
		}}, nil
	}
	if format == "" {
		data := b.metrics.flat(g)
		data["timestamp"] = now.UTC().Format(time.RFC3339)
		return &logical.Response{Data: data}, nil
	}
	counters, gauges := b.metrics.summary(g)
	return &logical.Response{Data: map[string]any{
		"timestamp": now.UTC().Format(time.RFC3339),
		"counters":  counters,
		"gauges":    gauges,
	}}, nil
}
