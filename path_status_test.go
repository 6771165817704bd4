package navercommerce

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func (e *testEnv) mustRead(path string) *logical.Response {
	e.t.Helper()
	resp, err := e.read(path)
	if err != nil || resp == nil || resp.IsError() {
		e.t.Fatalf("read %s: %v %v", path, err, resp.Error())
	}
	return resp
}

// statusKeys returns the "keys" of a status response, by type and account.
func statusKeys(t *testing.T, resp *logical.Response) map[string]map[string]any {
	t.Helper()
	list, ok := resp.Data["keys"].([]map[string]any)
	if !ok {
		t.Fatalf("keys is %T", resp.Data["keys"])
	}
	out := make(map[string]map[string]any, len(list))
	for _, k := range list {
		out[k["type"].(string)+"|"+k["account_id"].(string)] = k
	}
	return out
}

// statusList reads status with its key list (keys=true) and the given filters.
func (e *testEnv) statusList(filters map[string]any) *logical.Response {
	e.t.Helper()
	data := map[string]any{"keys": true}
	for k, v := range filters {
		data[k] = v
	}
	resp, err := e.request(e.b, logical.ReadOperation, "status", data)
	if err != nil || resp == nil || resp.IsError() {
		e.t.Fatalf("read status %v: %v %v", data, err, resp.Error())
	}
	return resp
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func TestStatusUnconfigured(t *testing.T) {
	env := newTestEnv(t)
	resp := env.statusList(nil)
	if resp.Data["configured"] != false || resp.Data["cached_keys"] != 0 || len(resp.Data["keys"].([]map[string]any)) != 0 {
		t.Errorf("unconfigured status: %v", resp.Data)
	}
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	resp = env.mustRead("status/store")
	if resp.Data["configured"] != false || resp.Data["cached"] != false || resp.Data["type"] != "SELLER" || resp.Data["account_id"] != testAccount {
		t.Errorf("unconfigured role status: %v", resp.Data)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "not configured") {
		t.Errorf("warnings %q", resp.Warnings)
	}
}

func TestStatusShowsCachedKeys(t *testing.T) {
	env := newTestEnv(t)
	configuredAt := env.clock.Now()
	env.configure() // caches the SELF token that verified the credentials
	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.mustWrite("roles/store-too", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.clock.Advance(time.Minute)
	fetchedAt := env.clock.Now()
	env.readToken("store")
	env.clock.Advance(10 * time.Minute)
	env.readToken("store-too")
	now := env.clock.Now()

	resp := env.statusList(nil)
	want := map[string]any{
		"configured": true, "client_id": testClientID, "background_refresh": true,
		"max_token_requests_per_hour": 12, "cached_keys": 2,
	}
	for k, v := range want {
		if resp.Data[k] != v {
			t.Errorf("%s = %#v, want %#v", k, resp.Data[k], v)
		}
	}
	keys := statusKeys(t, resp)
	if len(keys) != 2 {
		t.Fatalf("keys %v, want SELF and the seller's", keys)
	}
	tests := []struct {
		key  string
		want map[string]any
	}{
		// roles: every role that names the key, also one no token was read through (the SELF
		// token came from the config's verification).
		{"SELF|", map[string]any{
			"roles": []string{"app"}, "cached": true, "state": "cached",
			"fetched_at": rfc3339(configuredAt), "expires_at": rfc3339(configuredAt.Add(3 * time.Hour)),
			"renew_at":           rfc3339(configuredAt.Add(150 * time.Minute)),
			"requests_last_hour": 1, "requests_last_24h": 1, "request_budget_per_hour": 12, "consecutive_failures": 0,
		}},
		{"SELLER|" + testAccount, map[string]any{
			"roles": []string{"store", "store-too"}, "cached": true, "state": "cached",
			"fetched_at": rfc3339(fetchedAt), "expires_at": rfc3339(fetchedAt.Add(3 * time.Hour)),
			"renew_at": rfc3339(fetchedAt.Add(150 * time.Minute)), "last_read": rfc3339(now),
			"requests_last_hour": 1, "requests_last_24h": 1, "request_budget_per_hour": 12, "consecutive_failures": 0,
		}},
	}
	for _, tt := range tests {
		got := keys[tt.key]
		for field, v := range tt.want {
			if g, _ := json.Marshal(got[field]); string(g) != mustJSON(t, v) {
				t.Errorf("%s: %s = %s, want %s", tt.key, field, g, mustJSON(t, v))
			}
		}
		for _, absent := range []string{"last_error", "backoff_until", "next_background_attempt"} {
			if _, ok := got[absent]; ok {
				t.Errorf("%s: %s given with no failure: %v", tt.key, absent, got[absent])
			}
		}
	}
	if _, ok := keys["SELF|"]["last_read"]; ok {
		t.Error("SELF: last_read given though nothing read it")
	}

	// status/<role> describes the role's key, the same way.
	role := env.mustRead("status/store-too")
	if role.Data["role"] != "store-too" || role.Data["configured"] != true || len(role.Warnings) != 0 {
		t.Errorf("role status: %v %q", role.Data, role.Warnings)
	}
	for field, v := range keys["SELLER|"+testAccount] {
		if g, w := mustJSON(t, role.Data[field]), mustJSON(t, v); g != w {
			t.Errorf("status/store-too %s = %s; status says %s", field, g, w)
		}
	}

	// After 24 hours the requests have left both windows; expired tokens are not "cached".
	env.clock.Advance(24 * time.Hour)
	resp = env.statusList(nil)
	if resp.Data["cached_keys"] != 0 {
		t.Errorf("cached_keys %v after every token expired", resp.Data["cached_keys"])
	}
	for name, k := range statusKeys(t, resp) {
		if k["cached"] != false || k["requests_last_24h"] != 0 || k["expires_at"] != nil {
			t.Errorf("%s a day later: %v", name, k)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An operator sees which key fails, since when, with Naver's code and trace ID; and nothing
// secret, even when Naver's error echoes what was sent.
func TestStatusShowsLastErrorWithoutSecrets(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("config", map[string]any{"max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.mustWrite("roles/bad", map[string]any{"type": "SELLER", "account_id": "ncp_bad"})
	env.readToken("store")

	// The signature this request will carry (the client signs a timestamp 5 s in the past).
	timestamp := strconv.FormatInt(env.clock.Now().Add(-signingSkew).UnixMilli(), 10)
	sign, err := navercommercetest.Sign(testClientID, timestamp, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	env.naver.InjectFault(navercommercetest.Fault{
		Status: 403, Code: "GW.AUTHN",
		Message: "client_secret_sign " + sign + " does not match secret " + testSecret,
	})
	failedAt := env.clock.Now()
	resp, err := env.read("token/bad")
	if httpStatus(resp, err) != http.StatusBadRequest {
		t.Fatalf("read with a refused request: %d %s", httpStatus(resp, err), errorText(resp, err))
	}
	m := regexp.MustCompile(`trace ID ([0-9a-f]+)`).FindStringSubmatch(errorText(resp, err))
	if m == nil {
		t.Fatalf("no trace ID in %q", errorText(resp, err))
	}
	traceID := m[1]

	role := env.mustRead("status/bad")
	lastErr, ok := role.Data["last_error"].(map[string]any)
	if !ok {
		t.Fatalf("no last_error: %v", role.Data)
	}
	want := map[string]any{"at": rfc3339(failedAt), "status": 403, "code": "GW.AUTHN", "trace_id": traceID}
	for k, v := range want {
		if lastErr[k] != v {
			t.Errorf("last_error.%s = %#v, want %#v", k, lastErr[k], v)
		}
	}
	if msg, _ := lastErr["message"].(string); !strings.Contains(msg, "does not match secret") {
		t.Errorf("last_error.message %q lacks Naver's message", msg)
	}
	if role.Data["cached"] != false || role.Data["consecutive_failures"] != 1 || role.Data["requests_last_hour"] != 1 {
		t.Errorf("failed key: %v", role.Data)
	}
	if role.Data["backoff_until"] != rfc3339(failedAt.Add(failureBackoff)) {
		t.Errorf("backoff_until %v, want %s", role.Data["backoff_until"], rfc3339(failedAt.Add(failureBackoff)))
	}
	if len(role.Warnings) != 1 || !strings.Contains(role.Warnings[0], "no token is cached") {
		t.Errorf("warnings %q", role.Warnings)
	}

	all := env.statusList(map[string]any{"failing": true})
	if k := statusKeys(t, all)["SELLER|ncp_bad"]; k == nil || k["last_error"] == nil || len(statusKeys(t, all)) != 1 {
		t.Errorf("status does not list the failing key with its error: %v", all.Data)
	}
	for _, r := range []*logical.Response{role, all, env.mustRead("status/store")} {
		text := mustJSON(t, r.Data) + strings.Join(r.Warnings, "\n")
		assertNoSecrets(t, text, append(env.tokens, sign)...)
	}

	// The back-off ends; the error stays until a success.
	env.clock.Advance(time.Minute)
	role = env.mustRead("status/bad")
	if _, ok := role.Data["backoff_until"]; ok || role.Data["last_error"] == nil {
		t.Errorf("after the back-off: %v", role.Data)
	}
	env.readToken("bad")
	role = env.mustRead("status/bad")
	if role.Data["cached"] != true || role.Data["consecutive_failures"] != 0 || role.Data["requests_last_hour"] != 2 {
		t.Errorf("after a success: %v", role.Data)
	}
}

func TestRoleStatus(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})

	resp, err := env.read("status/nope")
	if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(errorText(resp, err), `role "nope" does not exist`) {
		t.Errorf("unknown role: %d %q", httpStatus(resp, err), errorText(resp, err))
	}
	resp, err = env.request(env.b, logical.ReadOperation, "status/store", map[string]any{"verbose": true})
	if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(errorText(resp, err), "verbose") {
		t.Errorf("unknown field: %d %q", httpStatus(resp, err), errorText(resp, err))
	}
	resp, err = env.request(env.b, logical.ReadOperation, "status", map[string]any{"verbose": true})
	if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(errorText(resp, err), "verbose") {
		t.Errorf("unknown field: %d %q", httpStatus(resp, err), errorText(resp, err))
	}

	// Never read: derived from the role, and said so.
	resp = env.mustRead("status/store")
	want := map[string]any{"role": "store", "type": "SELLER", "account_id": testAccount, "cached": false, "requests_last_hour": 0}
	for k, v := range want {
		if resp.Data[k] != v {
			t.Errorf("%s = %#v, want %#v", k, resp.Data[k], v)
		}
	}
	if mustJSON(t, resp.Data["roles"]) != `["store"]` {
		t.Errorf("roles %v", resp.Data["roles"])
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "no token is cached") {
		t.Errorf("warnings %q", resp.Warnings)
	}

	// After a restart, a stored token is shown as cached before anyone reads it.
	env.readToken("store")
	env.b = env.newBackend()
	resp = env.mustRead("status/store")
	if resp.Data["cached"] != true || resp.Data["expires_at"] != rfc3339(env.clock.Now().Add(3*time.Hour)) || len(resp.Warnings) != 0 {
		t.Errorf("after a restart: %v %q", resp.Data, resp.Warnings)
	}
	// status lists every stored token, as it did before the restart: the role's and the
	// SELF token that verified the config.
	all := env.statusList(nil)
	if all.Data["cached_keys"] != 2 || statusKeys(t, all)["SELLER|"+testAccount]["cached"] != true {
		t.Errorf("after a restart, status: %v", all.Data)
	}
}
