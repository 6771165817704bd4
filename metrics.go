package navercommerce

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
)

// metrics counts what the engine does for "metrics" (JSON, or Prometheus text). One per
// mount (no global registry): a multiplexed plugin process serves many mounts. Every method
// is safe on a nil receiver and is a few atomic adds: tokenRead runs on every token read.
//
// The exposition is written by hand rather than with client_golang: every series is known
// in advance (bounded label values, no account IDs), and the current client_golang would
// upgrade modules the Vault SDK shares with us. promtool checks the output in the tests.
type metrics struct {
	requests       [len(requestOutcomes)][len(requestCodes)]atomic.Uint64
	reads          [len(readResults)]atomic.Uint64
	renewals       [len(renewalOutcomes)]atomic.Uint64
	budgetRefusals atomic.Uint64
	// appBudgetRefusals and breakerRefusals count requests not sent for the application's
	// sake: its hourly budget, or Naver failing for it.
	appBudgetRefusals atomic.Uint64
	breakerRefusals   atomic.Uint64
}

func newMetrics() *metrics { return &metrics{} }

// Results of a token read, the label "result" of navercommerce_token_reads_total.
const (
	readCached  = "cached"  // served from the cache, no request to Naver
	readFetched = "fetched" // served after a request to Naver
	readStale   = "stale"   // Naver failed or the budget was spent; the cached token was served with a warning
	readFailed  = "failed"  // no token served
)

var readResults = [...]string{readCached, readFetched, readStale, readFailed}

// Outcomes of a request to Naver, the label "outcome" of navercommerce_token_requests_total.
const (
	outcomeSuccess     = iota // a token
	outcomeRefused            // a 4xx other than 429: the request itself was refused
	outcomeRateLimited        // 429
	outcomeFailed             // 5xx, no answer, or an answer that was not a token
)

var requestOutcomes = [...]string{
	outcomeSuccess:     "success",
	outcomeRefused:     "refused",
	outcomeRateLimited: "rate_limited",
	outcomeFailed:      "failed",
}

// requestCodes are the values of the label "code": Naver's error codes that the gateway
// documents, "" when the answer had none (success, no answer, a body that was not Naver's
// JSON) and "other" for any other code, so the label's values stay a fixed, small set
// whatever an upstream sends. Codes of a family (GW.PROXY.*, GW.BLOCK.*, GW.TIMEOUT.*)
// count under the family's name.
var requestCodes = [...]string{
	"", "BadRequest", "GW.AUTHN", "GW.IP_NOT_ALLOWED", "GW.NOT_FOUND", "GW.RATE_LIMIT", "GW.QUOTA_LIMIT",
	"GW.INTERNAL_SERVER_ERROR", "GW.PROXY", "GW.BLOCK", "GW.TIMEOUT", codeOther,
}

const codeOther = "other"

// requestCodeFamilies are the codes that stand for every code starting with them and a dot.
var requestCodeFamilies = []string{"GW.PROXY", "GW.BLOCK", "GW.TIMEOUT"}

// Outcomes of a background renewal, the label "outcome" of navercommerce_background_renewals_total.
var renewalOutcomes = [...]string{"success", "failure"}

// requestCodeIndex maps one of Naver's codes to its label value's index in requestCodes.
func requestCodeIndex(code string) int {
	for i, c := range requestCodes {
		if c == code && c != codeOther {
			return i
		}
	}
	for _, family := range requestCodeFamilies {
		if strings.HasPrefix(code, family+".") {
			return requestCodeIndex(family)
		}
	}
	return len(requestCodes) - 1 // codeOther
}

// classifyRequest gives the outcome and code indexes of one request to Naver.
func classifyRequest(err error) (outcome, code int) {
	if err == nil {
		return outcomeSuccess, 0
	}
	var ue *upstreamError
	if !errors.As(err, &ue) {
		return outcomeFailed, 0
	}
	code = requestCodeIndex(ue.Code)
	switch {
	case ue.StatusCode == http.StatusTooManyRequests:
		return outcomeRateLimited, code
	case ue.callerFault():
		return outcomeRefused, code
	default:
		return outcomeFailed, code
	}
}

// tokenRequested records one request to Naver for a token (one per fetch, retries inside it
// included); err is nil on success, an *upstreamError or another error otherwise.
func (m *metrics) tokenRequested(err error) {
	if m == nil {
		return
	}
	outcome, code := classifyRequest(err)
	m.requests[outcome][code].Add(1)
}

// tokenRead records the result of one token read (readCached, ...).
func (m *metrics) tokenRead(result string) {
	if m == nil {
		return
	}
	for i, r := range readResults {
		if r == result {
			m.reads[i].Add(1)
			return
		}
	}
}

// backgroundRenewal records one renewal by the periodic function or a refresh-ahead.
func (m *metrics) backgroundRenewal(err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.renewals[0].Add(1)
	} else {
		m.renewals[1].Add(1)
	}
}

// budgetRefused records a request not sent because the key's hourly budget was spent.
func (m *metrics) budgetRefused() {
	if m == nil {
		return
	}
	m.budgetRefusals.Add(1)
}

// appBudgetRefused records a request not sent because the application's budget was spent.
func (m *metrics) appBudgetRefused() {
	if m == nil {
		return
	}
	m.appBudgetRefusals.Add(1)
}

// breakerRefused records a request not sent because Naver has been failing for the application.
func (m *metrics) breakerRefused() {
	if m == nil {
		return
	}
	m.breakerRefusals.Add(1)
}

// metricsGauges are the values the exposition takes from the token cache at scrape time.
type metricsGauges struct {
	cachedKeys int
	// refusedKeys counts the accounts Naver refused as not authorised (state refused).
	refusedKeys int
	// soonestExpiry is how long the token that expires first has left; meaningful only
	// when cachedKeys > 0.
	soonestExpiry time.Duration
	// maxRequestsLastHour is the most requests any key sent in the last hour, and
	// budgetPerHour the most it may send (0: not configured).
	maxRequestsLastHour int
	budgetPerHour       int
	// appRequestsLastHour is what the application sent in the last hour, appBudgetPerHour
	// the most it may send.
	appRequestsLastHour int
	appBudgetPerHour    int
}

// labelValueEscaper escapes a label value as the text format requires.
var labelValueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// metricsContentType is Prometheus's text exposition format, version 0.0.4.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// metricFamily is one metric and its series: what both forms of "metrics" (JSON and
// Prometheus text) are written from, so the two never disagree.
type metricFamily struct {
	name, typ, help string
	samples         []metricSample
}

// metricSample is one series: label name and value pairs, in order, and its value.
type metricSample struct {
	labels []string
	value  float64
}

const (
	metricCounter = "counter"
	metricGauge   = "gauge"
)

// families gives the counters and g as metric families. Every counter series is given, zeros
// included, so rate() sees a series from its first increment on; the exception is
// navercommerce_token_requests_total, whose outcome×code pairs are mostly impossible: there
// only the success series is always given, the others once counted.
// navercommerce_token_expiry_seconds is left out when no key holds a token, so an alert on a
// low value does not fire on an idle mount.
func (m *metrics) families(g metricsGauges) []metricFamily {
	if m == nil {
		m = &metrics{}
	}
	var fams []metricFamily
	family := func(name, typ, help string) *metricFamily {
		fams = append(fams, metricFamily{name: name, typ: typ, help: help})
		return &fams[len(fams)-1]
	}
	add := func(f *metricFamily, value float64, labels ...string) {
		f.samples = append(f.samples, metricSample{labels: labels, value: value})
	}

	f := family("navercommerce_token_requests_total", metricCounter,
		`Token requests sent to Naver, by outcome (success, refused: 4xx, rate_limited: 429, failed: 5xx or no answer) and Naver's error code ("" when none, "other" when not a documented one). Retries within one request are not counted apart.`)
	for o := range requestOutcomes {
		for c := range requestCodes {
			n := m.requests[o][c].Load()
			if n == 0 && !(o == outcomeSuccess && c == 0) {
				continue
			}
			add(f, float64(n), "outcome", requestOutcomes[o], "code", requestCodes[c])
		}
	}

	f = family("navercommerce_token_reads_total", metricCounter,
		"Token reads, by result: cached (no request to Naver), fetched (after a request), stale (renewal failed, the cached token served with a warning), failed (no token served).")
	for i, r := range readResults {
		add(f, float64(m.reads[i].Load()), "result", r)
	}

	f = family("navercommerce_background_renewals_total", metricCounter,
		"Tokens renewed ahead of reads (by the periodic function or behind a read), by outcome.")
	for i, o := range renewalOutcomes {
		add(f, float64(m.renewals[i].Load()), "outcome", o)
	}

	f = family("navercommerce_budget_refusals_total", metricCounter,
		"Token requests not sent because the token had spent its max_token_requests_per_hour, or kept to its pace while Naver failed.")
	add(f, float64(m.budgetRefusals.Load()))

	f = family("navercommerce_cached_keys", metricGauge,
		"Tokens (one per client ID, type and account) cached with life left.")
	add(f, float64(g.cachedKeys))

	f = family("navercommerce_refused_keys", metricGauge,
		"Seller accounts Naver refused as not authorised (a typo, or a seller who revoked the application), not asked again for an hour: state refused in status. A warning, not an outage.")
	add(f, float64(g.refusedKeys))

	if g.cachedKeys > 0 {
		f = family("navercommerce_token_expiry_seconds", metricGauge,
			"Seconds until the cached token that expires first expires; absent when no token is cached.")
		add(f, g.soonestExpiry.Seconds())
	}

	f = family("navercommerce_token_requests_last_hour_max", metricGauge,
		"The most token requests any one token sent to Naver in the last hour, retries included; compare with navercommerce_token_request_budget_per_hour.")
	add(f, float64(g.maxRequestsLastHour))

	f = family("navercommerce_token_request_budget_per_hour", metricGauge,
		"max_token_requests_per_hour: the most token requests one token may send in an hour (0 when the mount is not configured).")
	add(f, float64(g.budgetPerHour))

	f = family("navercommerce_application_budget_refusals_total", metricCounter,
		"Token requests not sent because the application had spent max_application_requests_per_hour.")
	add(f, float64(m.appBudgetRefusals.Load()))

	f = family("navercommerce_naver_failing_refusals_total", metricCounter,
		"Token requests not sent because Naver's last answers to the application were failures (one probe at a time tries again).")
	add(f, float64(m.breakerRefusals.Load()))

	f = family("navercommerce_application_requests_last_hour", metricGauge,
		"Token requests the whole application sent to Naver in the last hour, retries included; compare with navercommerce_application_request_budget_per_hour.")
	add(f, float64(g.appRequestsLastHour))

	f = family("navercommerce_application_request_budget_per_hour", metricGauge,
		"max_application_requests_per_hour, or the automatic budget (0 when the mount is not configured).")
	add(f, float64(g.appBudgetPerHour))
	return fams
}

// exposition writes the counters and g in Prometheus's text format.
func (m *metrics) exposition(g metricsGauges) []byte {
	var buf bytes.Buffer
	for _, f := range m.families(g) {
		fmt.Fprintf(&buf, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, s := range f.samples {
			writeSeries(&buf, f.name, s)
			buf.WriteByte(' ')
			buf.WriteString(strconv.FormatFloat(s.value, 'f', -1, 64))
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

// writeSeries writes a series' name and labels as the exposition does: name{label="value",...}.
func writeSeries(buf *bytes.Buffer, name string, s metricSample) {
	buf.WriteString(name)
	if len(s.labels) == 0 {
		return
	}
	buf.WriteByte('{')
	for i := 0; i < len(s.labels); i += 2 {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(s.labels[i])
		buf.WriteString(`="`)
		labelValueEscaper.WriteString(buf, s.labels[i+1])
		buf.WriteByte('"')
	}
	buf.WriteByte('}')
}

// flat gives every series as name{labels} → value, as vault read prints a table: one row a
// series. The names and labels are the exposition's.
func (m *metrics) flat(g metricsGauges) map[string]any {
	out := map[string]any{}
	var buf bytes.Buffer
	for _, f := range m.families(g) {
		for _, s := range f.samples {
			buf.Reset()
			writeSeries(&buf, f.name, s)
			out[buf.String()] = s.value
		}
	}
	return out
}

// flatFields declares every series flat may give (for the path's response schema): those of
// metrics in which every counter and label value has a sample.
func flatFields() map[string]*framework.FieldSchema {
	m := newMetrics()
	for o := range requestOutcomes {
		for c := range requestCodes {
			m.requests[o][c].Add(1)
		}
	}
	fields := map[string]*framework.FieldSchema{}
	var buf bytes.Buffer
	for _, f := range m.families(metricsGauges{cachedKeys: 1}) {
		for _, s := range f.samples {
			buf.Reset()
			writeSeries(&buf, f.name, s)
			fields[buf.String()] = &framework.FieldSchema{Type: framework.TypeFloat, Description: f.help}
		}
	}
	return fields
}

// summary gives the counters and g as Vault's sys/metrics gives its own in JSON: a list of
// counters and a list of gauges, each series an object with its name, labels and value.
// The names are the Prometheus ones, so an alert and a dashboard can use either form.
func (m *metrics) summary(g metricsGauges) (counters, gauges []map[string]any) {
	counters, gauges = []map[string]any{}, []map[string]any{}
	for _, f := range m.families(g) {
		for _, s := range f.samples {
			labels := make(map[string]string, len(s.labels)/2)
			for i := 0; i < len(s.labels); i += 2 {
				labels[s.labels[i]] = s.labels[i+1]
			}
			series := map[string]any{"name": f.name, "labels": labels, "value": s.value}
			if f.typ == metricCounter {
				counters = append(counters, series)
			} else {
				gauges = append(gauges, series)
			}
		}
	}
	return counters, gauges
}
