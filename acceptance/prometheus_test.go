//go:build acceptance

package acceptance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
)

// TestPrometheusScrapesMetrics: navercommerce/metrics?format=prometheus is Prometheus text
// that promtool accepts, read over plain HTTP with a Vault token as a bearer token, and without
// the parameter Vault's JSON that `vault read` shows (as sys/metrics does); a real Prometheus
// server scrapes it from the dev Vault, and its query API shows the counters moving after
// token reads and after a request Naver refused. `vault read navercommerce/status` shows the
// failing key with Naver's code and trace ID.
func TestPrometheusScrapesMetrics(t *testing.T) {
	promDir := installPrometheus(t)
	em := startEmulator(t, emulatorOpts{AccountIDs: []string{"ncp_prom_store", "ncp_prom_bad"}})
	v := startDevVaultWithEngine(t)
	v.enableAudit(t)
	v.configure(t, "navercommerce", em, "max_retries=0")
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_prom_store")
	v.write(t, "navercommerce/roles/bad", "type=SELLER", "account_id=ncp_prom_bad")

	// Prometheus and the operator use a token with examples/policy-operator.hcl only.
	v.cli(t, "policy", "write", "navercommerce-operator", filepath.Join("..", "examples", "policy-operator.hcl"))
	opToken := strings.TrimSpace(v.cli(t, "token", "create", "-policy=navercommerce-operator", "-field=token"))
	operator, err := harness.NewClient(v.addr, opToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := operator.Logical().Read("navercommerce/token/store"); err == nil {
		t.Fatal("the operator policy lets its holder read tokens")
	} else {
		requireStatus(t, err, http.StatusForbidden)
	}

	body := scrapeVault(t, v, opToken)
	cmd := exec.Command(filepath.Join(promDir, "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\nexposition:\n%s", err, out, body)
	}

	// Without format=prometheus: Vault's JSON, which the CLI reads.
	if out := v.cli(t, "read", "navercommerce/metrics"); !strings.Contains(out, "navercommerce_cached_keys") {
		t.Errorf("vault read navercommerce/metrics:\n%s", out)
	}
	var metricsJSON struct {
		Data struct {
			Counters []struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
				Value  float64           `json:"value"`
			} `json:"counters"`
		} `json:"data"`
	}
	if out := v.cli(t, "read", "-format=json", "navercommerce/metrics", "format=json"); json.Unmarshal([]byte(out), &metricsJSON) != nil ||
		len(metricsJSON.Data.Counters) == 0 || metricsJSON.Data.Counters[0].Name != "navercommerce_token_requests_total" ||
		metricsJSON.Data.Counters[0].Labels["outcome"] != "success" || metricsJSON.Data.Counters[0].Value != 1 {
		t.Errorf("vault read -format=json navercommerce/metrics format=json: %+v\n%s", metricsJSON, out)
	}
	// The CLI's default output is a table of one row per series, not a map[...] blob.
	if out := v.cli(t, "read", "navercommerce/metrics"); strings.Contains(out, "map[") ||
		!regexp.MustCompile(`(?m)^navercommerce_token_requests_total\{outcome="success",code=""\}\s+1$`).MatchString(out) {
		t.Errorf("vault read navercommerce/metrics is not a table of series:\n%s", out)
	}

	prom := startPrometheus(t, promDir, v, opToken)
	prom.waitValue(t, `up{job="vault-navercommerce"}`, 1)
	// The config write verified the credentials with one successful request.
	prom.waitValue(t, `navercommerce_token_requests_total{outcome="success",code=""}`, 1)
	prom.waitValue(t, `navercommerce_token_reads_total{result="fetched"}`, 0)

	v.readToken(t, "navercommerce", "store")
	v.readToken(t, "navercommerce", "store")
	prom.waitValue(t, `navercommerce_token_requests_total{outcome="success",code=""}`, 2)
	prom.waitValue(t, `navercommerce_token_reads_total{result="fetched"}`, 1)
	prom.waitValue(t, `navercommerce_token_reads_total{result="cached"}`, 1)
	prom.waitValue(t, `navercommerce_cached_keys`, 2)

	em.fault(t, map[string]any{"status": 403, "code": "GW.AUTHN", "message": "client_secret_sign is invalid"})
	_, err = v.readTokenErr("navercommerce", "bad")
	requireStatus(t, err, http.StatusBadRequest, "GW.AUTHN")
	var re *api.ResponseError
	errors.As(err, &re)
	m := regexp.MustCompile(`trace ID ([0-9a-f]+)`).FindStringSubmatch(strings.Join(re.Errors, " "))
	if m == nil {
		t.Fatalf("no trace ID in %q", re.Errors)
	}
	traceID := m[1]
	prom.waitValue(t, `navercommerce_token_requests_total{outcome="refused",code="GW.AUTHN"}`, 1)
	prom.waitValue(t, `navercommerce_token_reads_total{result="failed"}`, 1)
	prom.waitValue(t, `sum(navercommerce_token_requests_total)`, 3)

	// What an operator sees at 3 a.m.
	table := v.cli(t, "read", "navercommerce/status")
	for _, want := range []string{`(?m)^configured\s+true$`, `(?m)^cached_keys\s+2$`, `(?m)^failing_keys\s+1$`} {
		if !regexp.MustCompile(want).MatchString(table) {
			t.Errorf("vault read navercommerce/status has no %s:\n%s", want, table)
		}
	}
	failing := v.cli(t, "read", "navercommerce/status", "failing=true")
	for _, want := range []string{"ncp_prom_bad", "GW.AUTHN", traceID} {
		if !regexp.MustCompile(want).MatchString(failing) {
			t.Errorf("vault read navercommerce/status failing=true has no %s:\n%s", want, failing)
		}
	}
	table += failing
	var status struct {
		Data struct {
			Cached    bool   `json:"cached"`
			AccountID string `json:"account_id"`
			LastError struct {
				Status  int    `json:"status"`
				Code    string `json:"code"`
				TraceID string `json:"trace_id"`
			} `json:"last_error"`
			ConsecutiveFailures int `json:"consecutive_failures"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	secret, err := operator.Logical().Read("navercommerce/status/bad")
	if err != nil {
		t.Fatalf("read navercommerce/status/bad with the operator's token: %v", err)
	}
	outBytes, err := json.Marshal(secret)
	if err != nil {
		t.Fatal(err)
	}
	out := string(outBytes)
	if err := json.Unmarshal(outBytes, &status); err != nil {
		t.Fatalf("navercommerce/status/bad: %v\n%s", err, out)
	}
	if d := status.Data; d.Cached || d.AccountID != "ncp_prom_bad" || d.LastError.Status != 403 || d.LastError.Code != "GW.AUTHN" ||
		d.LastError.TraceID != traceID || d.ConsecutiveFailures != 1 || len(status.Warnings) != 1 {
		t.Errorf("status/bad: %s", out)
	}
	assertNoKnownSecret(t, "vault read navercommerce/status", table+out+string(scrapeVault(t, v, opToken)))
}

// installPrometheus returns the directory of prometheus and promtool, installing Debian's
// package on first use (scripts/install-prometheus.sh).
func installPrometheus(t *testing.T) string {
	t.Helper()
	requireEnv(t)
	cmd := exec.Command(filepath.Join("..", "scripts", "install-prometheus.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/install-prometheus.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// scrapeVault reads navercommerce/metrics the way Prometheus does: plain HTTP,
// format=prometheus, a Vault token as a bearer token, text back.
func scrapeVault(t *testing.T, v *vaultProc, vaultToken string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, v.addr+"/v1/navercommerce/metrics?format=prometheus", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+vaultToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET navercommerce/metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET navercommerce/metrics: HTTP %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	return body
}

// assertNoKnownSecret fails if text holds any secret a test has handled (client secrets,
// signatures, access tokens).
func assertNoKnownSecret(t *testing.T, what, text string) {
	t.Helper()
	secrets.Range(func(value, kind any) bool {
		if strings.Contains(text, value.(string)) {
			t.Errorf("%s shows %s", what, kind)
		}
		return true
	})
}

type prometheus struct {
	url  string // http://127.0.0.1:PORT
	proc *proc
}

// startPrometheus runs a Prometheus server on loopback that scrapes v's navercommerce/metrics
// every second with vaultToken, and waits until it is ready.
func startPrometheus(t *testing.T, dir string, v *vaultProc, vaultToken string) *prometheus {
	t.Helper()
	work := mkdir(t, testDir(t, "prometheus-"+randomHex(3)))
	port, err := harness.FreePortPair()
	if err != nil {
		t.Fatal(err)
	}
	// examples/prometheus/prometheus.yml, pointed at this Vault over plain HTTP, scraping
	// every second with the given token.
	example, err := os.ReadFile(filepath.Join("..", "examples", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(work, "vault-token")
	writeFile(t, tokenFile, vaultToken)
	config := string(example)
	for _, r := range [][2]string{
		{"format: [prometheus]", "format: [prometheus]"}, // without it Vault answers JSON
		{"scrape_interval: 30s", "scrape_interval: 1s\n    scrape_timeout: 1s"},
		{"scheme: https", "scheme: http"},
		{"/etc/prometheus/vault-token", tokenFile},
		{"vault.example.com:8200", strings.TrimPrefix(v.addr, "http://")},
	} {
		if !strings.Contains(config, r[0]) {
			t.Fatalf("examples/prometheus/prometheus.yml no longer has %q", r[0])
		}
		config = strings.ReplaceAll(config, r[0], r[1])
	}
	cfgPath := filepath.Join(work, "prometheus.yml")
	writeFile(t, cfgPath, config)
	logPath := filepath.Join(work, "prometheus.log")
	v.h.addLog(logPath)
	listen := "127.0.0.1:" + strconv.Itoa(port)
	p := startProc(t, "prometheus", logPath, childEnv("HOME="+work), filepath.Join(dir, "prometheus"),
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(work, "data"),
		"--web.listen-address="+listen,
		"--log.level=info",
	)
	cleanupProc(t, p)
	prom := &prometheus{url: "http://" + listen, proc: p}
	waitFor(t, 60*time.Second, 100*time.Millisecond, "Prometheus to be ready", func() (bool, error) {
		if p.exited() {
			t.Fatalf("prometheus exited: %v\n%s", p.err, p.tail(30))
		}
		resp, err := http.Get(prom.url + "/-/ready")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("HTTP %d", resp.StatusCode)
	})
	return prom
}

// query runs an instant query and returns the value of its single sample; ok is false when
// the result is empty.
func (p *prometheus) query(expr string) (value float64, ok bool, err error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, false, fmt.Errorf("decoding the query result: %w", err)
	}
	if out.Status != "success" {
		return 0, false, harness.Permanent(fmt.Errorf("query %s: %s", expr, out.Error))
	}
	switch len(out.Data.Result) {
	case 0:
		return 0, false, nil
	case 1:
	default:
		return 0, false, harness.Permanent(fmt.Errorf("query %s: %d series, want one", expr, len(out.Data.Result)))
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	value, err = strconv.ParseFloat(s, 64)
	return value, true, err
}

// waitValue waits until Prometheus has scraped expr's value as want.
func (p *prometheus) waitValue(t *testing.T, expr string, want float64) {
	t.Helper()
	waitFor(t, 30*time.Second, 200*time.Millisecond, fmt.Sprintf("Prometheus to see %s = %v", expr, want), func() (bool, error) {
		got, ok, err := p.query(expr)
		switch {
		case err != nil:
			return false, err
		case !ok:
			return false, errors.New("no sample yet")
		case got != want:
			return false, fmt.Errorf("value %v", got)
		}
		return true, nil
	})
}
