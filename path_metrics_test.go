package navercommerce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// scrapeMetrics reads "metrics" as Prometheus does (format=prometheus) and returns the raw body.
func (e *testEnv) scrapeMetrics() []byte {
	e.t.Helper()
	resp, err := e.request(e.b, logical.ReadOperation, "metrics", map[string]any{"format": "prometheus"})
	if err != nil || resp.IsError() {
		e.t.Fatalf("read metrics: %v %v", err, resp.Error())
	}
	if resp.Data[logical.HTTPStatusCode] != http.StatusOK {
		e.t.Errorf("status %v, want 200", resp.Data[logical.HTTPStatusCode])
	}
	if ct := resp.Data[logical.HTTPContentType]; ct != "text/plain; version=0.0.4; charset=utf-8" {
		e.t.Errorf("content type %q", ct)
	}
	body, ok := resp.Data[logical.HTTPRawBody].([]byte)
	if !ok {
		e.t.Fatalf("raw body is %T, want []byte", resp.Data[logical.HTTPRawBody])
	}
	if len(resp.Data) != 3 {
		e.t.Errorf("response data has more than the raw response fields: %v", resp.Data)
	}
	return body
}

// parseExposition maps each sample line's series (name and labels as written) to its value.
func parseExposition(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	samples := make(map[string]float64)
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("malformed sample line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample line %q: %v", line, err)
		}
		if _, dup := samples[line[:i]]; dup {
			t.Fatalf("series %s written twice", line[:i])
		}
		samples[line[:i]] = v
	}
	return samples
}

// checkWithPromtool validates an exposition with Prometheus's own checker when it is
// installed (scripts/install-prometheus.sh; the acceptance tests always require it).
func checkWithPromtool(t *testing.T, body []byte) {
	t.Helper()
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		var err error
		if promtool, err = exec.LookPath("promtool"); err != nil {
			t.Log("promtool not installed (scripts/install-prometheus.sh installs it): exposition not checked by promtool")
			return
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\nexposition:\n%s", err, out, body)
	}
}

func TestMetricsExpositionIsValid(t *testing.T) {
	env := newTestEnv(t)
	unconfigured := env.scrapeMetrics()
	checkWithPromtool(t, unconfigured)
	samples := parseExposition(t, unconfigured)
	if samples["navercommerce_cached_keys"] != 0 || samples["navercommerce_token_request_budget_per_hour"] != 0 {
		t.Errorf("unconfigured mount: %v", samples)
	}
	if _, ok := samples["navercommerce_token_expiry_seconds"]; ok {
		t.Error("token expiry given with no token cached")
	}

	env.configure()
	env.mustWrite("config", map[string]any{"max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.mustWrite("roles/odd", map[string]any{"type": "SELLER", "account_id": "ncp_odd"})
	env.readToken("store")
	env.naver.InjectFault(navercommercetest.Fault{Status: 502, Code: `GW.PROXY.odd "code"` + "\n"})
	if _, err := env.read("token/odd"); err == nil {
		t.Fatal("the injected fault did not fail the read")
	}
	body := env.scrapeMetrics()
	checkWithPromtool(t, body)
	text := string(body)
	for _, name := range []string{
		"navercommerce_token_requests_total", "navercommerce_token_reads_total", "navercommerce_background_renewals_total",
		"navercommerce_budget_refusals_total", "navercommerce_cached_keys", "navercommerce_token_expiry_seconds",
	} {
		if !strings.Contains(text, "# HELP "+name+" ") || !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("%s has no HELP or TYPE line", name)
		}
	}
	// Account IDs and odd codes never become label values.
	for _, s := range []string{testAccount, "ncp_odd", "odd"} {
		if strings.Contains(text, s) {
			t.Errorf("%q appears in the exposition", s)
		}
	}
	if samples := parseExposition(t, body); samples[`navercommerce_token_requests_total{outcome="failed",code="GW.PROXY"}`] != 1 {
		t.Errorf("a GW.PROXY.* code is not counted under GW.PROXY:\n%s", body)
	}
	assertNoSecrets(t, text, env.tokens...)
}

func TestMetricsCountRequestsAndReads(t *testing.T) {
	env := newTestEnv(t)
	env.configure() // verifies the credentials: one successful SELF request
	env.mustWrite("config", map[string]any{"max_retries": 0, "background_refresh": false})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})

	before := parseExposition(t, env.scrapeMetrics())
	moved := func(want map[string]float64) {
		t.Helper()
		after := parseExposition(t, env.scrapeMetrics())
		for series, delta := range want {
			if got := after[series] - before[series]; got != delta {
				t.Errorf("%s moved by %v, want %v", series, got, delta)
			}
		}
		for series, v := range after {
			if _, checked := want[series]; !checked && v != before[series] && strings.HasSuffix(strings.SplitN(series, "{", 2)[0], "_total") {
				t.Errorf("%s moved by %v unexpectedly", series, v-before[series])
			}
		}
		before = after
	}
	if before[`navercommerce_token_requests_total{outcome="success",code=""}`] != 1 {
		t.Errorf("the verification request is not counted: %v", before)
	}

	env.readToken("store")
	env.readToken("store")
	moved(map[string]float64{
		`navercommerce_token_requests_total{outcome="success",code=""}`: 1,
		`navercommerce_token_reads_total{result="fetched"}`:             1,
		`navercommerce_token_reads_total{result="cached"}`:              1,
	})

	// Refused, rate limited and failed requests, each for a fresh account (a failed key
	// backs off, and its next read would share the error without asking).
	faults := []struct {
		fault  navercommercetest.Fault
		series string
	}{
		{navercommercetest.Fault{Status: 403, Code: "GW.AUTHN"}, `navercommerce_token_requests_total{outcome="refused",code="GW.AUTHN"}`},
		{navercommercetest.Fault{Status: 403, Code: "GW.IP_NOT_ALLOWED"}, `navercommerce_token_requests_total{outcome="refused",code="GW.IP_NOT_ALLOWED"}`},
		{navercommercetest.Fault{Status: 400, Code: "SomethingNew"}, `navercommerce_token_requests_total{outcome="refused",code="other"}`},
		{navercommercetest.Fault{Status: 429}, `navercommerce_token_requests_total{outcome="rate_limited",code="GW.RATE_LIMIT"}`},
		{navercommercetest.Fault{Status: 429, Code: "GW.QUOTA_LIMIT"}, `navercommerce_token_requests_total{outcome="rate_limited",code="GW.QUOTA_LIMIT"}`},
		{navercommercetest.Fault{Status: 500}, `navercommerce_token_requests_total{outcome="failed",code="GW.INTERNAL_SERVER_ERROR"}`},
		{navercommercetest.Fault{Status: 504, Code: "GW.TIMEOUT.UPSTREAM"}, `navercommerce_token_requests_total{outcome="failed",code="GW.TIMEOUT"}`},
		{navercommercetest.Fault{DropConnection: true}, `navercommerce_token_requests_total{outcome="failed",code=""}`},
		{navercommercetest.Fault{Body: "<html>bad gateway</html>", Status: 502}, `navercommerce_token_requests_total{outcome="failed",code=""}`},
	}
	for i, f := range faults {
		role := "r" + strconv.Itoa(i)
		env.mustWrite("roles/"+role, map[string]any{"type": "SELLER", "account_id": "ncp_" + role})
		env.naver.InjectFault(f.fault)
		if _, err := env.read("token/" + role); err == nil {
			t.Fatalf("fault %+v did not fail the read", f.fault)
		}
		// A healthy answer after each, so that Naver failing three times in a row does not
		// stop the application asking (the breaker).
		env.mustWrite("roles/ok"+role, map[string]any{"type": "SELLER", "account_id": "ncp_ok" + role})
		env.readToken("ok" + role)
		moved(map[string]float64{f.series: 1, `navercommerce_token_reads_total{result="failed"}`: 1,
			`navercommerce_token_requests_total{outcome="success",code=""}`: 1, `navercommerce_token_reads_total{result="fetched"}`: 1})
	}

	// Renewal fails while the cached token has life left: the read is served stale.
	env.clock.Advance(2*time.Hour + 31*time.Minute)
	env.naver.InjectFault(navercommercetest.Fault{Status: 503})
	if resp := env.readToken("store"); len(resp.Warnings) == 0 {
		t.Error("a stale read has no warning")
	}
	moved(map[string]float64{
		`navercommerce_token_requests_total{outcome="failed",code="GW.BLOCK"}`: 1,
		`navercommerce_token_reads_total{result="stale"}`:                      1,
	})
	env.assertCompliant()
}

func TestMetricsCountBackgroundRenewalsAndBudget(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("config", map[string]any{"max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	before := parseExposition(t, env.scrapeMetrics())
	if before[`navercommerce_background_renewals_total{outcome="success"}`] != 0 {
		t.Fatalf("renewals before any: %v", before)
	}

	// 29 minutes left: the read is served at once and the token renewed behind it.
	env.clock.Advance(2*time.Hour + 31*time.Minute)
	env.readToken("store")
	waitFor(t, func() bool {
		return parseExposition(t, env.scrapeMetrics())[`navercommerce_background_renewals_total{outcome="success"}`] == 1
	})

	// The periodic function's renewal fails; the cached token still has 29 minutes.
	env.clock.Advance(2*time.Hour + 31*time.Minute)
	env.naver.InjectFault(navercommercetest.Fault{Status: 500})
	periodic(t, env)
	after := parseExposition(t, env.scrapeMetrics())
	if after[`navercommerce_background_renewals_total{outcome="failure"}`] != 1 {
		t.Errorf("failed periodic renewal not counted:\n%s", env.scrapeMetrics())
	}
	// Reads during the back-off share the failure without asking: no renewal is counted.
	env.readToken("store")
	env.readToken("store")
	after = parseExposition(t, env.scrapeMetrics())
	if after[`navercommerce_background_renewals_total{outcome="failure"}`] != 1 || after[`navercommerce_background_renewals_total{outcome="success"}`] != 1 {
		t.Errorf("reads during a back-off counted as renewals:\n%s", env.scrapeMetrics())
	}

	// With a budget of one request an hour, a key whose token was dropped may not ask again.
	env.mustWrite("config", map[string]any{"max_token_requests_per_hour": 1})
	env.mustWrite("roles/spent", map[string]any{"type": "SELLER", "account_id": "ncp_spent"})
	env.readToken("spent")
	env.deleteToken("spent", true)
	resp, err := env.read("token/spent")
	if httpStatus(resp, err) != http.StatusTooManyRequests {
		t.Fatalf("read over the budget: %d %s", httpStatus(resp, err), errorText(resp, err))
	}
	after = parseExposition(t, env.scrapeMetrics())
	if after["navercommerce_budget_refusals_total"] != 1 {
		t.Errorf("budget refusal not counted: %v", after["navercommerce_budget_refusals_total"])
	}
	if after["navercommerce_token_requests_last_hour_max"] != 1 || after["navercommerce_token_request_budget_per_hour"] != 1 {
		t.Errorf("budget gauges: %v %v", after["navercommerce_token_requests_last_hour_max"], after["navercommerce_token_request_budget_per_hour"])
	}
}

func periodic(t *testing.T, env *testEnv) {
	t.Helper()
	if _, err := env.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: env.storage}); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsGauges(t *testing.T) {
	env := newTestEnv(t)
	env.configure() // caches the SELF token that verified the credentials
	gauges := func() (keys float64, expiry float64, hasExpiry bool) {
		s := parseExposition(t, env.scrapeMetrics())
		expiry, hasExpiry = s["navercommerce_token_expiry_seconds"]
		return s["navercommerce_cached_keys"], expiry, hasExpiry
	}
	if keys, expiry, _ := gauges(); keys != 1 || expiry != 3*60*60 {
		t.Errorf("after configuring: cached_keys %v, expiry %v; want 1, 10800", keys, expiry)
	}
	env.clock.Advance(time.Hour)
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	if keys, expiry, _ := gauges(); keys != 2 || expiry != 2*60*60 {
		t.Errorf("two tokens: cached_keys %v, soonest expiry %v; want 2, 7200", keys, expiry)
	}
	env.clock.Advance(2*time.Hour + 30*time.Minute) // the SELF token has expired
	if keys, expiry, _ := gauges(); keys != 1 || expiry != 30*60 {
		t.Errorf("one expired: cached_keys %v, expiry %v; want 1, 1800", keys, expiry)
	}
	env.clock.Advance(time.Hour)
	if keys, _, has := gauges(); keys != 0 || has {
		t.Errorf("all expired: cached_keys %v, expiry given: %v", keys, has)
	}
}

func TestMetricsRejectsUnknownFieldsAndFormats(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		data     map[string]any
		wantText []string
	}{
		{map[string]any{"fromat": "prometheus"}, []string{"fromat", "format"}},
		{map[string]any{"format": "openmetrics"}, []string{"format", `"openmetrics"`, "format=prometheus", "JSON"}},
	}
	for _, tt := range tests {
		resp, err := env.request(env.b, logical.ReadOperation, "metrics", tt.data)
		if httpStatus(resp, err) != http.StatusBadRequest {
			t.Errorf("%v: status %d %q, want 400", tt.data, httpStatus(resp, err), errorText(resp, err))
		}
		for _, want := range tt.wantText {
			if !strings.Contains(errorText(resp, err), want) {
				t.Errorf("%v: error %q does not mention %q", tt.data, errorText(resp, err), want)
			}
		}
	}
}

// "metrics" answers one field per series by default (a table in `vault read`), and with
// format=json Vault's JSON, as sys/metrics does, so that `vault read` and
// client libraries (hvac, node-vault) read it; it carries the same series as the exposition.
func TestMetricsJSONByDefault(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("config", map[string]any{"max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	env.naver.InjectFault(navercommercetest.Fault{Status: 403, Code: "GW.AUTHN"})
	env.mustWrite("roles/bad", map[string]any{"type": "SELLER", "account_id": "ncp_bad"})
	if _, err := env.read("token/bad"); err == nil {
		t.Fatal("the injected fault did not fail the read")
	}

	// The default: one field per series, as the exposition names it (vault read prints a table).
	for _, data := range []map[string]any{nil, {"format": ""}} {
		resp, err := env.request(env.b, logical.ReadOperation, "metrics", data) // schema-checked by request
		if err != nil || resp.IsError() {
			t.Fatalf("read metrics %v: %v %v", data, err, resp.Error())
		}
		want := parseExposition(t, env.scrapeMetrics())
		for k, v := range want {
			if got, ok := resp.Data[k].(float64); !ok || got != v {
				t.Errorf("format %v: %s = %v, want %v", data, k, resp.Data[k], v)
			}
		}
		for k, v := range resp.Data {
			if _, ok := want[k]; !ok && k != "timestamp" {
				t.Errorf("format %v: %s = %v, a series the exposition lacks", data, k, v)
			}
			if _, nested := v.(map[string]any); nested {
				t.Errorf("format %v: %s is a nested map, which vault read prints as a blob", data, k)
			}
		}
	}

	for _, data := range []map[string]any{{"format": "json"}, {"format": " JSON "}} {
		resp, err := env.request(env.b, logical.ReadOperation, "metrics", data) // schema-checked by request
		if err != nil || resp.IsError() {
			t.Fatalf("read metrics %v: %v %v", data, err, resp.Error())
		}
		if _, raw := resp.Data[logical.HTTPRawBody]; raw {
			t.Fatalf("format %v: a raw body, want Vault's JSON", data)
		}
		// What a client sees: the response as JSON.
		body, err := json.Marshal(resp.Data)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Timestamp string `json:"timestamp"`
			Counters  []struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
				Value  *float64          `json:"value"`
			} `json:"counters"`
			Gauges []struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
				Value  *float64          `json:"value"`
			} `json:"gauges"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if ts, err := time.Parse(time.RFC3339, got.Timestamp); err != nil || !ts.Equal(env.clock.Now().Truncate(time.Second)) {
			t.Errorf("timestamp %q, want %s", got.Timestamp, env.clock.Now().UTC().Format(time.RFC3339))
		}
		// Every series of the exposition is in the JSON with the same value, and no other.
		want := parseExposition(t, env.scrapeMetrics())
		seen := map[string]float64{}
		series := func(kind, name string, labels map[string]string, value *float64) {
			if value == nil || labels == nil {
				t.Errorf("%s %s: labels %v, value %v: both must be present", kind, name, labels, value)
				return
			}
			key := name
			if len(labels) > 0 {
				var pairs []string
				for _, l := range [][2]string{{"outcome", labels["outcome"]}, {"code", labels["code"]}, {"result", labels["result"]}} {
					if _, ok := labels[l[0]]; ok {
						pairs = append(pairs, l[0]+`="`+l[1]+`"`)
					}
				}
				key += "{" + strings.Join(pairs, ",") + "}"
			}
			isCounter := strings.HasSuffix(name, "_total")
			if isCounter != (kind == "counter") {
				t.Errorf("%s listed among the %ss", name, kind)
			}
			seen[key] = *value
		}
		for _, c := range got.Counters {
			series("counter", c.Name, c.Labels, c.Value)
		}
		for _, g := range got.Gauges {
			series("gauge", g.Name, g.Labels, g.Value)
		}
		if len(seen) != len(want) {
			t.Errorf("JSON has %d series, the exposition %d:\n%v\n%v", len(seen), len(want), seen, want)
		}
		for k, v := range want {
			if seen[k] != v {
				t.Errorf("%s: JSON %v, exposition %v", k, seen[k], v)
			}
		}
		if seen[`navercommerce_token_requests_total{outcome="refused",code="GW.AUTHN"}`] != 1 || seen["navercommerce_cached_keys"] != 2 {
			t.Errorf("series: %v", seen)
		}
		assertNoSecrets(t, string(body), env.tokens...)
		if strings.Contains(string(body), testAccount) || strings.Contains(string(body), "ncp_bad") {
			t.Errorf("an account ID in the metrics: %s", body)
		}
	}
}

func TestRequestClassification(t *testing.T) {
	tests := []struct {
		err         error
		wantOutcome string
		wantCode    string
	}{
		{nil, "success", ""},
		{&upstreamError{StatusCode: 403, Code: "GW.AUTHN"}, "refused", "GW.AUTHN"},
		{&upstreamError{StatusCode: 401, Code: "GW.AUTHN"}, "refused", "GW.AUTHN"},
		{&upstreamError{StatusCode: 400, Code: "BadRequest"}, "refused", "BadRequest"},
		{&upstreamError{StatusCode: 403}, "refused", ""},
		{&upstreamError{StatusCode: 429, Code: "GW.RATE_LIMIT"}, "rate_limited", "GW.RATE_LIMIT"},
		{&upstreamError{StatusCode: 429, Code: "GW.QUOTA_LIMIT"}, "rate_limited", "GW.QUOTA_LIMIT"},
		{&upstreamError{StatusCode: 500, Code: "GW.PROXY.CONNECT"}, "failed", "GW.PROXY"},
		{&upstreamError{StatusCode: 503, Code: "GW.BLOCK.X"}, "failed", "GW.BLOCK"},
		{&upstreamError{StatusCode: 504, Code: "GW.TIMEOUT"}, "failed", "GW.TIMEOUT"},
		{&upstreamError{StatusCode: 502, Code: "GW.PROXYX"}, "failed", "other"},
		{&upstreamError{StatusCode: 500, Code: "other"}, "failed", "other"},
		{&upstreamError{StatusCode: 200}, "failed", ""},
		{&upstreamError{Err: context.DeadlineExceeded}, "failed", ""},
		{errors.New("signing failed"), "failed", ""},
		{&core.BudgetError{Limit: 1}, "failed", ""},
	}
	for _, tt := range tests {
		o, c := classifyRequest(tt.err)
		if requestOutcomes[o] != tt.wantOutcome || requestCodes[c] != tt.wantCode {
			t.Errorf("%v: %s/%q, want %s/%q", tt.err, requestOutcomes[o], requestCodes[c], tt.wantOutcome, tt.wantCode)
		}
	}
}

func TestMetricsNilAndHotPath(t *testing.T) {
	var none *metrics
	none.tokenRead(readCached)
	none.tokenRequested(errors.New("x"))
	none.backgroundRenewal(nil)
	none.budgetRefused()
	if s := parseExposition(t, none.exposition(metricsGauges{})); s[`navercommerce_token_reads_total{result="cached"}`] != 0 {
		t.Errorf("nil metrics: %v", s)
	}

	m := newMetrics()
	if allocs := testing.AllocsPerRun(100, func() { m.tokenRead(readCached) }); allocs != 0 {
		t.Errorf("tokenRead allocates %v times", allocs)
	}
	m.tokenRead("no such result") // ignored, not a new label value
	s := parseExposition(t, m.exposition(metricsGauges{}))
	if s[`navercommerce_token_reads_total{result="cached"}`] != 101 { // AllocsPerRun runs once more to warm up
		t.Errorf("cached reads %v, want 101", s[`navercommerce_token_reads_total{result="cached"}`])
	}
	if len(s) != 16 {
		t.Errorf("%d series, want 16 (request success, 4 reads, 2 renewals, 3 refusals, 6 gauges; no expiry):\n%s", len(s), m.exposition(metricsGauges{}))
	}
}

func BenchmarkMetricsTokenRead(b *testing.B) {
	m := newMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.tokenRead(readCached)
		}
	})
}

// After a restart, status and metrics both count the stored tokens, and the expiry gauge is
// there: reads are served from those tokens.
func TestMetricsCachedKeysAgreeWithStatusAfterRestart(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")

	env.b = env.newBackend() // a restart: same storage
	status, err := env.read("status")
	if err != nil || status.IsError() {
		t.Fatalf("status: %v %v", err, status.Error())
	}
	body := string(env.scrapeMetrics())
	m := regexp.MustCompile(`(?m)^navercommerce_cached_keys (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no navercommerce_cached_keys in\n%s", body)
	}
	// The SELLER token read before the restart and the SELF token that verified the config.
	if want := status.Data[fieldCachedKeys]; m[1] != "2" || want != 2 {
		t.Errorf("after a restart status says cached_keys=%v, metrics navercommerce_cached_keys=%s", want, m[1])
	}
	if !strings.Contains(body, "navercommerce_token_expiry_seconds ") {
		t.Error("navercommerce_token_expiry_seconds is absent although a token is cached (in storage) and served")
	}
	requests := env.requestsFor("SELLER", testAccount)
	env.readToken("store")
	if env.requestsFor("SELLER", testAccount) != requests {
		t.Fatal("the read after the restart asked Naver: the stored token was not in use")
	}
}
