package navercommerce

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// The tests of issue 16: what is known of a token is never lost when it stops being cached
// for serving (evictions, drops, restarts, periodic runs), so no read asks Naver needlessly
// and no handed-back token is served past its death.

func (e *testEnv) deleteToken(role string, force bool) *logical.Response {
	e.t.Helper()
	var data map[string]any
	if force {
		data = map[string]any{"force": true}
	}
	resp, err := e.request(e.b, logical.DeleteOperation, "token/"+role, data)
	if msg := errorText(resp, err); msg != "" {
		e.t.Fatalf("delete token/%s: %s", role, msg)
	}
	return resp
}

func expiresIn(resp *logical.Response) time.Duration {
	return time.Duration(resp.Data["expires_in"].(int64)) * time.Second
}

// Defect 1: deleting and re-creating a role (a rename; Terraform's destroy-then-create), or
// switching its account away and back, made the next read ask Naver while the token still
// had 2 hours left; in reused-token mode the handed-back token was served for 3 hours.
func TestRoleRecreatedKeepsItsToken(t *testing.T) {
	seller := map[string]any{"type": "SELLER", "account_id": testAccount}
	for _, tc := range []struct {
		name    string
		restart bool
		change  func(env *testEnv)
	}{
		{"delete and re-create", false, func(env *testEnv) {
			if _, err := env.request(env.b, logical.DeleteOperation, "roles/store", nil); err != nil {
				t.Fatal(err)
			}
			env.mustWrite("roles/store", seller)
		}},
		{"rename", false, func(env *testEnv) {
			if _, err := env.request(env.b, logical.DeleteOperation, "roles/store", nil); err != nil {
				t.Fatal(err)
			}
			env.mustWrite("roles/store2", seller)
		}},
		{"account away and back", false, func(env *testEnv) {
			env.mustWrite("roles/store", map[string]any{"account_id": "ncp_other"})
			env.mustWrite("roles/store", map[string]any{"account_id": testAccount})
		}},
		{"delete, periodic run, restart, re-create", true, func(env *testEnv) {
			if _, err := env.request(env.b, logical.DeleteOperation, "roles/store", nil); err != nil {
				t.Fatal(err)
			}
			env.periodic(context.Background())
			env.b = env.newBackend()
			env.mustWrite("roles/store", seller)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.naver.SetReusedTokenFullLifetime(true) // a needless request would also be served 3 h
			env.configure()
			env.mustWrite("roles/store", seller)
			first := env.readToken("store")
			env.clock.Advance(time.Hour)
			tc.change(env)
			role := "store"
			if tc.name == "rename" {
				role = "store2"
			}
			again := env.readToken(role)
			if again.Data["access_token"] != first.Data["access_token"] {
				t.Error("a new token was issued")
			}
			if left := expiresIn(again); left > 2*time.Hour {
				t.Errorf("the token is said to have %s left; it has 2h", left)
			}
			if n := env.requestsFor("SELLER", testAccount); n != 1 {
				t.Errorf("%d requests, want 1: the token had 2 hours left", n)
			}
			env.assertCompliant()
		})
	}
}

// Defects 2 and 3: a forced drop of a token Naver still accepts, then a restart and a
// periodic run: what is known of the dropped token bounds the token Naver hands back.
func TestDropIsRememberedAcrossRestartsAndPeriodicRuns(t *testing.T) {
	for _, tc := range []struct {
		name           string
		restartBefore  bool // restart between the read and the drop (the token in storage only)
		restartAfter   bool // restart between the drop and the next read
		periodicBefore bool // periodic run between the drop and the next read
	}{
		{"restart, drop, periodic run", true, false, true},
		{"drop, restart", false, true, false},
		{"drop, restart, periodic run", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.naver.SetReusedTokenFullLifetime(true)
			env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true}) // the forced drop's request is needless
			env.configure()
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
			first := env.readToken("store")
			env.clock.Advance(time.Hour)
			if tc.restartBefore {
				env.b = env.newBackend()
			}
			env.deleteToken("store", true)
			if tc.restartAfter {
				env.b = env.newBackend()
			}
			if tc.periodicBefore {
				env.periodic(context.Background())
				env.clock.Advance(time.Minute)
				env.periodic(context.Background())
			}
			second := env.readToken("store")
			if second.Data["access_token"] != first.Data["access_token"] {
				t.Fatal("expected Naver to hand back the same token")
			}
			if left := expiresIn(second); left > 2*time.Hour {
				t.Errorf("the handed-back token is said to have %s left; it has at most 2h", left)
			}
		})
	}
}

// Defect 4: after a restart a read loaded the stored token, the drop completed, then the
// read published the token back into memory: every later read was served the dropped token.
func TestDropRacingALoadNeverResurrectsTheToken(t *testing.T) {
	env := newTestEnv(t)
	hs := &hookStorage{Storage: env.storage}
	env.storage = hs
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	dead := env.readToken("store").Data["access_token"].(string)
	env.naver.KillToken(dead) // the seller re-authorised the application

	env.b = env.newBackend() // restart: the token is in storage only
	blocked, release := hs.arm("get", tokenStoragePrefix)
	read := make(chan *logical.Response, 1)
	go func() {
		resp, _ := env.read("token/store")
		read <- resp
	}()
	<-blocked // the read is loading the stored token
	dropped := make(chan error, 1)
	go func() {
		resp, err := env.request(env.b, logical.DeleteOperation, "token/store", nil)
		if msg := errorText(resp, err); msg != "" {
			t.Errorf("drop: %s", msg)
		}
		dropped <- nil
	}()
	time.Sleep(50 * time.Millisecond) // let the drop run as far as it can
	close(release)
	<-read
	<-dropped

	for i := 0; i < 3; i++ {
		tok := env.readToken("store").Data["access_token"].(string)
		if tok == dead || !env.naver.TokenValid(tok) {
			t.Fatalf("read %d after the drop was served the dropped token", i+1)
		}
		env.clock.Advance(time.Minute)
	}
}

// Defect 5: a role deleted while its read was at Naver left the new token stored; the
// hourly sweep brought it back into memory, where status and metrics counted it.
func TestRoleDeletedDuringItsReadIsNotResurrected(t *testing.T) {
	env := newTestEnv(t)
	release := make(chan struct{})
	env.useTransport(&slowNetwork{clock: env.clock, release: release})
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "verify_connection": false})
	env.mustWrite("roles/gone", map[string]any{"type": "SELLER", "account_id": "ncp_gone"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		env.read("token/gone")
	}()
	waitFor(t, func() bool {
		return env.b.tokens.inFlight(tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: "ncp_gone"})
	})
	if _, err := env.request(env.b, logical.DeleteOperation, "roles/gone", nil); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	for i := 0; i < 70; i++ { // past the hourly storage sweep
		env.periodic(context.Background())
		env.clock.Advance(time.Minute)
	}
	resp, err := env.read("status")
	if errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	if strings.Contains(strings.ToLower(formatData(resp.Data)), "ncp_gone") {
		t.Errorf("status shows the key of the deleted role: %v", resp.Data)
	}
}

// Defect 6: an answer whose token cannot be served counted as a success, with no back-off:
// every read asked again at once until the budget was spent.
func TestUnservableAnswerIsAFailure(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.naver.SetTokenLifetime(5 * time.Second)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "verify_connection": false})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	for i := 0; i < 3; i++ {
		resp, err := env.read("token/store")
		if got := httpStatus(resp, err); got != http.StatusBadGateway || !strings.Contains(errorText(resp, err), "too little to serve") {
			t.Fatalf("read %d: %d %q, want 502 saying the token has too little life", i+1, got, errorText(resp, err))
		}
		env.clock.Advance(time.Second)
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("%d requests in 3 s, want 1: the failure's back-off (5 s) holds", n)
	}
	var st []core.KeyView
	env.b.tokens.view(func(m *core.Machine) { st = m.Keys(env.clock.Now(), nil) })
	if len(st) != 1 || st[0].LastError == nil || st[0].Failures != 1 || st[0].BackoffUntil.IsZero() {
		t.Errorf("status %+v, want the failure, its count and its back-off", st)
	}
	if got := requestCount(env.b.metrics, outcomeFailed); got != 1 {
		t.Errorf("metrics count %d failed requests, want 1", got)
	}
}

// Defect 9: a drop of a token Naver still accepts asked again at once: a needless request,
// which Naver penalises by limiting the whole application.
func TestDropOfALiveTokenAsksNothing(t *testing.T) {
	env := newTestEnv(t) // the emulator's penalty is on
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.mustWrite("roles/other", map[string]any{"type": "SELLER", "account_id": "ncp_other"})
	first := env.readToken("store").Data["access_token"]
	env.clock.Advance(time.Minute)
	resp := env.deleteToken("store", false)
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "force=true") {
		t.Errorf("warnings %q, want one saying the token is kept and how to force", resp.Warnings)
	}
	if env.readToken("store").Data["access_token"] != first {
		t.Error("the token Naver still accepts was not kept")
	}
	env.readToken("other") // every other seller is still served
	env.assertCompliant()

	// Naver unreachable: nothing is dropped, and the error says how to drop anyway.
	env.naver.Close()
	r, err := env.request(env.b, logical.DeleteOperation, "token/store", nil)
	if got := httpStatus(r, err); got != http.StatusBadGateway || !strings.Contains(errorText(r, err), "force=true") {
		t.Errorf("drop with Naver unreachable: %d %q, want 502 naming force=true", got, errorText(r, err))
	}
	if env.cachedToken("SELLER", testAccount) == nil {
		t.Error("the token was dropped although Naver could not say it is dead")
	}
}

// Defect 10: a valid token served while its renewal is refused carried no warning, and a
// read replaying an earlier failure did not say so.
func TestStaleReadsSayWhy(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0, "max_token_requests_per_hour": 2})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	env.clock.Advance(2*time.Hour + 31*time.Minute) // in the window; background refresh on
	env.naver.InjectFault(navercommercetest.Fault{Status: 503, Count: 1000})
	env.readToken("store") // starts the renewal behind the read
	waitForFlights(env.b, tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount})
	stale := readCount(env.b.metrics, readStale)
	for i := 0; i < 4; i++ { // the budget (2) is spent on the second renewal
		env.clock.Advance(3 * time.Minute)
		resp := env.readToken("store")
		waitForFlights(env.b, tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount})
		if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "renewing this token failed") {
			t.Errorf("read %d: warnings %q, want one saying the renewal failed", i+1, resp.Warnings)
		}
	}
	if got := readCount(env.b.metrics, readStale) - stale; got != 4 {
		t.Errorf("token_reads_total{result=stale} rose by %d, want 4", got)
	}

	// A read during a back-off, with no token left to serve, says it replays a failure.
	env2 := newTestEnv(t)
	env2.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env2.naver.URL,
		"verify_connection": false, "max_retries": 0})
	env2.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env2.naver.InjectFault(navercommercetest.Fault{Status: 429, Count: 1})
	env2.read("token/store")
	r, err := env2.read("token/store")
	if msg := errorText(r, err); !strings.Contains(msg, "not asking Naver again before") || httpStatus(r, err) != http.StatusBadGateway {
		t.Errorf("read during the back-off: %d %q, want it to say it replays the failure", httpStatus(r, err), msg)
	}
	// Status says the same: no read asks Naver before the back-off ends.
	st, err := env2.read("status/store")
	if err != nil || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "share the last failure until") {
		t.Errorf("status during the back-off: %v %v, want a warning that reads share the failure", st, err)
	}
}

// A cosmetic change of base_url is not a credential change that retires every token.
func TestCosmeticBaseURLChangeKeepsTokens(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	for _, u := range []string{strings.Replace(env.naver.URL, "http://", "HTTP://", 1) + "/", strings.ToUpper(env.naver.URL[:4]) + env.naver.URL[4:] + "//"} {
		env.mustWrite("config", map[string]any{"base_url": u})
		env.readToken("store")
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	for _, tc := range []struct{ in, want string }{
		{"https://API.Commerce.Naver.com:443/external/", "https://api.commerce.naver.com/external"},
		{"http://127.0.0.1:80/x", "http://127.0.0.1/x"},
		{"http://[::1]:8200/", "http://[::1]:8200"},
	} {
		if got, err := validateBaseURL(tc.in); err != nil || got != tc.want {
			t.Errorf("validateBaseURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// readCount is the value of navercommerce_token_reads_total{result}.
func readCount(m *metrics, result string) uint64 {
	for i, r := range readResults {
		if r == result {
			return m.reads[i].Load()
		}
	}
	return 0
}

// requestCount is the sum of navercommerce_token_requests_total{outcome}.
func requestCount(m *metrics, outcome int) (n uint64) {
	for i := range m.requests[outcome] {
		n += m.requests[outcome][i].Load()
	}
	return n
}

func formatData(data map[string]any) string {
	b, _ := json.Marshal(data)
	return string(b)
}

// Promise (README, Failures): "A failed renewal serves the still-valid cached token with a
// warning"; (Storage) "a restart or leader change does not cause a burst of requests"; and
// issue 16: "What we know about a token is never lost". An unservable answer (Naver issues
// a token with 5 s of life) is published as a fact into the key's only storage entry,
// overwriting the still-valid token it was renewing. After a restart that token (20 minutes
// left) is gone: the read asks Naver again at once (the back-off was in memory) and fails.
func TestUnservableAnswerKeepsStoredValidToken(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.readTokenWithoutRetries() // background refresh off: the read waits for the renewal
	valid := env.cachedToken("SELLER", testAccount).AccessToken
	env.clock.Advance(2*time.Hour + 40*time.Minute) // 20 minutes left: in Naver's window
	env.naver.SetTokenLifetime(5 * time.Second)
	resp := env.readToken("store") // the renewal's answer is unservable: the cached token is served
	if resp.Data["access_token"] != valid || len(resp.Warnings) == 0 {
		t.Fatalf("before the restart: want the cached token with a warning, got warnings %q", resp.Warnings)
	}
	if stored := env.storedToken("SELLER", testAccount); stored == nil || stored.AccessToken != valid {
		t.Errorf("storage no longer holds the still-valid token (20 minutes left): %+v", stored)
	}

	env.b = env.newBackend() // restart
	requests := env.requestsFor("SELLER", testAccount)
	r, err := env.read("token/store")
	if msg := errorText(r, err); msg != "" {
		t.Errorf("after the restart the still-valid token (20 minutes left) is not served: %s", msg)
	} else if r.Data["access_token"] != valid {
		t.Errorf("after the restart a different token is served")
	}
	// Back-offs live in memory (README "Decisions"): after a restart the read may ask once,
	// and is served the stored token either way.
	if n := env.requestsFor("SELLER", testAccount) - requests; n > 1 {
		t.Errorf("the read after the restart sent %d requests", n)
	}
}

// Promise (README): "Naver is asked only when it must issue a new token" and "A handed-back
// token never gains life ... across restarts" (issue 16: "every path that learns a token
// consults [the fact]"). After a restart, one failed storage read of the token entry makes
// the read ask Naver without what is known (the stored token has 2 hours left): a needless
// request, which the emulator penalises, and in reused-token mode the handed-back token is
// served with 3 hours while it dies in 2.
func TestStorageReadErrorNeverAsksNaverWithoutTheFact(t *testing.T) {
	env := newTestEnv(t)
	fs := &flakyStorage{Storage: env.storage}
	env.storage = fs
	env.b = env.newBackend()
	env.naver.SetReusedTokenFullLifetime(true)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store")
	env.clock.Advance(time.Hour)

	env.b = env.newBackend() // restart: the token is in storage only
	fs.arm("get", tokenStoragePrefix, 1)
	resp, err := env.read("token/store")
	if msg := errorText(resp, err); msg == "" {
		if left := expiresIn(resp); resp.Data["access_token"] == first.Data["access_token"] && left > 2*time.Hour {
			t.Errorf("the handed-back token is served with %s left; it dies in 2h", left)
		}
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("%d token requests, want 1: the stored token had 2 hours left", n)
	}
	env.assertCompliant()
}
