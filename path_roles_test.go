package navercommerce

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestRoleWriteRejectsBadInput(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name  string
		data  map[string]any
		field string
	}{
		{"missing type", map[string]any{"account_id": testAccount}, "type"},
		{"unknown type", map[string]any{"type": "AGENCY"}, "type"},
		{"seller without account", map[string]any{"type": "SELLER"}, "account_id"},
		{"self with account", map[string]any{"type": "SELF", "account_id": testAccount}, "account_id"},
		{"account with space", map[string]any{"type": "SELLER", "account_id": "ncp 1"}, "account_id"},
		{"account with control char", map[string]any{"type": "SELLER", "account_id": "ncp\x01"}, "account_id"},
		{"account too long", map[string]any{"type": "SELLER", "account_id": strings.Repeat("a", 129)}, "account_id"},
		{"negative ttl", map[string]any{"type": "SELF", "ttl": "-5s"}, "ttl"},
		{"ttl garbage", map[string]any{"type": "SELF", "ttl": "forever"}, "ttl"},
		{"unknown field", map[string]any{"type": "SELF", "acount_id": "x"}, "acount_id"},
		{"negative min_remaining_ttl", map[string]any{"type": "SELF", "min_remaining_ttl": "-1s"}, "min_remaining_ttl"},
		{"min_remaining_ttl beyond Naver's window", map[string]any{"type": "SELF", "min_remaining_ttl": "30m"}, "min_remaining_ttl"},
		{"min_remaining_ttl garbage", map[string]any{"type": "SELF", "min_remaining_ttl": "long"}, "min_remaining_ttl"},
		{"negative max_new_accounts_per_hour", map[string]any{"type": "SELLER", "allowed_account_ids": "*", "max_new_accounts_per_hour": -1}, "max_new_accounts_per_hour"},
		{"max_new_accounts_per_hour past its bound", map[string]any{"type": "SELLER", "allowed_account_ids": "*", "max_new_accounts_per_hour": 1001}, "max_new_accounts_per_hour"},
		{"max_new_accounts_per_hour garbage", map[string]any{"type": "SELLER", "allowed_account_ids": "*", "max_new_accounts_per_hour": "many"}, "max_new_accounts_per_hour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := env.write("roles/r", tt.data)
			msg := errorText(resp, err)
			if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(msg, tt.field) {
				t.Fatalf("want a 400 naming %s, got %d %q", tt.field, httpStatus(resp, err), msg)
			}
			if entry, _ := env.storage.Get(context.Background(), "roles/r"); entry != nil {
				t.Fatal("a rejected write stored a role")
			}
		})
	}
}

func TestRoleLifecycle(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("roles/store", map[string]any{"type": "seller", "account_id": testAccount, "ttl": "1h"})
	resp, err := env.read("roles/store")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "SELLER", "account_id": testAccount, "allowed_account_ids": []string{}, "ttl": int64(3600), "lease": true, "min_remaining_ttl": int64(0), "max_new_accounts_per_hour": 0}
	if !reflect.DeepEqual(resp.Data, want) {
		t.Errorf("role = %v, want %v", resp.Data, want)
	}

	// An update keeps what it does not name.
	env.mustWrite("roles/store", map[string]any{"min_remaining_ttl": "29m"})
	env.mustWrite("roles/store", map[string]any{"ttl": 0})
	resp, _ = env.read("roles/store")
	if resp.Data["account_id"] != testAccount || resp.Data["ttl"] != int64(0) || resp.Data["min_remaining_ttl"] != int64(29*60) {
		t.Errorf("update: %v", resp.Data)
	}
	// Switching to SELF needs the account cleared explicitly; the error says how.
	r, err := env.write("roles/store", map[string]any{"type": "SELF"})
	if msg := errorText(r, err); !strings.Contains(msg, `account_id=""`) {
		t.Errorf("switching to SELF with an account: %q", msg)
	}
	env.mustWrite("roles/store", map[string]any{"type": "SELF", "account_id": ""})

	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	resp, err = env.request(env.b, logical.ListOperation, "roles/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if keys := resp.Data["keys"]; !reflect.DeepEqual(keys, []string{"app", "store"}) {
		t.Errorf("list = %v", keys)
	}

	if resp, err := env.request(env.b, logical.DeleteOperation, "roles/app", nil); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	if resp, _ := env.read("roles/app"); resp != nil {
		t.Errorf("deleted role still readable: %v", resp.Data)
	}
	if r, err := env.read("token/app"); httpStatus(r, err) != http.StatusBadRequest {
		t.Error("token of a deleted role still served (role cache not dropped)")
	}
}

func TestInvalidateRoleDropsMemory(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	other := env.newBackend()
	if r, err := env.request(other, logical.ReadOperation, "token/app", nil); errorText(r, err) != "" {
		t.Fatal(errorText(r, err))
	}
	env.mustWrite("roles/app", map[string]any{"type": "SELLER", "account_id": testAccount})
	other.invalidate(context.Background(), "roles/app")
	r, err := env.request(other, logical.ReadOperation, "token/app", nil)
	if errorText(r, err) != "" || r.Data["type"] != "SELLER" {
		t.Fatalf("other node still used the old role: %v %v", errorText(r, err), r)
	}
}

// Only roles that tokens are read through stay in memory: engines with thousands of roles.
func TestOnlyRolesInUseAreCached(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	for i := range 100 {
		env.mustWrite(fmt.Sprintf("roles/r%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_%d", i)})
	}
	env.readToken("r7")
	cached := 0
	env.b.roles.Range(func(any, any) bool { cached++; return true })
	if cached != 1 {
		t.Errorf("%d roles cached after writing 100 and reading one, want 1", cached)
	}
}

// A value of the wrong kind gets an error naming the field, the value and what the field
// takes, not the framework's "cannot parse ... as bool"; a bad client secret gets its length,
// never its value.
func TestBadValuesSayWhatIsAccepted(t *testing.T) {
	env := newTestEnv(t)
	config := map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL}
	with := func(base map[string]any, k string, v any) map[string]any {
		m := map[string]any{k: v}
		for bk, bv := range base {
			if bk != k {
				m[bk] = bv
			}
		}
		return m
	}
	role := map[string]any{"type": "SELF"}
	tests := []struct {
		path    string
		data    map[string]any
		want    []string
		wantNot []string
	}{
		{"roles/r", with(role, "lease", "maybe"), []string{`lease: "maybe" is not valid`, "true or false"}, []string{"cannot parse"}},
		{"roles/r", with(role, "ttl", "forever"), []string{`ttl: "forever" is not valid`, `"3h"`, "seconds"}, []string{"cannot parse"}},
		{"config", with(config, "background_refresh", "sometimes"), []string{`background_refresh: "sometimes" is not valid`, "true or false"}, nil},
		{"config", with(config, "verify_connection", "perhaps"), []string{`verify_connection: "perhaps" is not valid`, "true or false"}, nil},
		{"config", with(config, "max_retries", "two"), []string{`max_retries: "two" is not valid`, "whole number"}, nil},
		{"config", with(config, "request_timeout", "soon"), []string{`request_timeout: "soon" is not valid`, "duration"}, nil},
		{"config", with(config, "client_secret", testSecret+"mkgWHhD5UNbHprCG2.USOiBzWBlJid2"),
			[]string{"client_secret: must be a bcrypt salt", "has 60 characters", "has 29"}, []string{"mkgWHhD5UNbHprCG2"}},
		{"config", with(config, "client_secret", testSecret[:28]), []string{"client_secret", "has 28 characters"}, []string{testSecret[:28]}},
		{"config", with(config, "client_secret", "$2a$03$QKLnou1D2cSH19Pia30bcu"), []string{"client_secret: must have a bcrypt cost"}, []string{"characters", "QKLnou1D2"}},
	}
	for _, tt := range tests {
		resp, err := env.write(tt.path, tt.data)
		msg := errorText(resp, err)
		if httpStatus(resp, err) != http.StatusBadRequest {
			t.Errorf("%s %v: status %d %q, want 400", tt.path, tt.data, httpStatus(resp, err), msg)
			continue
		}
		for _, want := range tt.want {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not say %q", tt.path, msg, want)
			}
		}
		for _, not := range tt.wantNot {
			if strings.Contains(msg, not) {
				t.Errorf("%s: error %q has %q", tt.path, msg, not)
			}
		}
		assertNoSecrets(t, msg)
	}
}

// Every path that takes a role name says which names are allowed instead of a bare 404
// "unsupported path", and good names keep working.
func TestBadRoleNamesSayWhichAreAllowed(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	for _, name := range []string{"bad_name!", "-store", "store.", "한글", "my store"} { // a "/" starts a seller's account
		for _, r := range []struct {
			op   logical.Operation
			path string
			data map[string]any
		}{
			{logical.UpdateOperation, "roles/" + name, map[string]any{"type": "SELF"}},
			{logical.ReadOperation, "roles/" + name, nil},
			{logical.DeleteOperation, "roles/" + name, nil},
			{logical.ReadOperation, "token/" + name, nil},
			{logical.DeleteOperation, "token/" + name, nil},
			{logical.ReadOperation, "status/" + name, nil},
		} {
			resp, err := env.request(env.b, r.op, r.path, r.data)
			msg := errorText(resp, err)
			if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(msg, fmt.Sprintf("role name %q is not allowed", name)) ||
				!strings.Contains(msg, `letters, digits and "_"`) {
				t.Errorf("%s %s: %d %q, want a 400 saying which names are allowed", r.op, r.path, httpStatus(resp, err), msg)
			}
		}
	}
	if keys, _ := env.storage.List(context.Background(), "roles/"); len(keys) != 0 {
		t.Errorf("bad names stored roles: %v", keys)
	}
	for _, name := range []string{"a", "my-store", "shop_1.orders", "A9"} {
		env.mustWrite("roles/"+name, map[string]any{"type": "SELF"})
		env.readToken(name)
		if _, err := env.read("status/" + name); err != nil {
			t.Errorf("status/%s: %v", name, err)
		}
	}
}

// Issue 16 defect 7: "an unreadable entry is reported (status lists it as unreadable, with
// the reason) and never blocks other roles; an operator can always delete it". A damaged
// role entry still makes status answer 500 and cannot be deleted.
func TestDamagedRoleKeepsStatusAndCanBeDeleted(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	if err := env.storage.Put(context.Background(), &logical.StorageEntry{Key: roleStoragePrefix + "bad", Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"status", "status/store"} {
		if resp, err := env.read(path); httpStatus(resp, err) != http.StatusOK {
			t.Errorf("read %s: %d %q, want 200: one damaged role must not break every role's status", path, httpStatus(resp, err), errorText(resp, err))
		}
	}
	if resp, err := env.request(env.b, logical.DeleteOperation, "roles/bad", nil); errorText(resp, err) != "" {
		t.Errorf("delete roles/bad: %q, want it deleted", errorText(resp, err))
	}
}

// Issue 16 defect 8: "Role writes and deletes must be serialised per role". A ttl write that
// read the role before an account switch stored its merge over the switch: both answer
// success, and the role silently keeps the old account.
func TestConcurrentRoleWritesMergeEveryUpdate(t *testing.T) {
	env := newTestEnv(t)
	hs := &hookStorage{Storage: env.storage}
	env.storage = hs
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})

	// The ttl write reads the role (account A), then stops just before it stores its merge.
	blocked, release := hs.arm("put", roleStoragePrefix+"store")
	ttlDone := make(chan string, 1)
	go func() {
		resp, err := env.write("roles/store", map[string]any{"ttl": 60})
		ttlDone <- errorText(resp, err)
	}()
	<-blocked
	// The account switch reads the role too (still account A, no ttl) and waits to store.
	switched := make(chan string, 1)
	go func() {
		resp, err := env.write("roles/store", map[string]any{"account_id": "ncp_new"})
		switched <- errorText(resp, err)
	}()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if msg := <-ttlDone; msg != "" {
		t.Fatalf("ttl write: %s", msg)
	}
	if msg := <-switched; msg != "" {
		t.Fatalf("account switch: %s", msg)
	}
	r, err := readRole(context.Background(), env.storage, "store")
	if err != nil {
		t.Fatal(err)
	}
	if r.AccountID != "ncp_new" || r.TTL != time.Minute {
		t.Errorf("role after both writes answered success: account %q ttl %s, want ncp_new and 1m", r.AccountID, r.TTL)
	}
}

// Promise (README, token DELETE): "refused (401 GW.AUTHN): the token is dropped (204)"; "the
// next read asks Naver". A read that comes after the drop answered 204 joins the renewal
// that was in flight before it; when that renewal fails, the flight hands the joined read
// the token the operator just dropped (dead at Naver), as a still-valid token with a warning.
func TestReadAfterDropNeverGetsTheDroppedToken(t *testing.T) {
	env := newTestEnv(t)
	env.readTokenWithoutRetries() // background refresh off: reads in the window wait for Naver
	key := tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount}
	dead := env.cachedToken("SELLER", testAccount).AccessToken
	env.clock.Advance(2*time.Hour + 40*time.Minute) // 20 minutes left: the next read renews
	env.naver.KillToken(dead)                       // the seller re-authorised the application
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, Delay: time.Second})
	go env.read("token/store") // the renewal: held by Naver for a second, then 503
	waitFor(t, func() bool { return env.b.tokens.inFlight(key) })

	if resp := env.deleteToken("store", false); resp != nil && len(resp.Warnings) > 0 {
		t.Fatalf("drop: %q", resp.Warnings)
	}
	resp, err := env.read("token/store") // after the 204
	if errorText(resp, err) == "" && resp.Data["access_token"] == dead {
		t.Errorf("the read after the drop answered 204 was served the dropped token (warnings %q)", resp.Warnings)
	}
}

// Promise (README, Failures): "After a failure the key backs off (5 s; 30 s after a 429;
// ... longer when Naver's Retry-After asks for more ...) and reads in that time share the error instead of
// asking again." A drop clears the back-off: Naver said to wait 2 minutes (429,
// Retry-After 120), the operator drops the dead token, and the next read asks Naver 10
// seconds later.
func TestDropKeepsNaversRetryAfter(t *testing.T) {
	env := newTestEnv(t)
	env.readTokenWithoutRetries()
	dead := env.cachedToken("SELLER", testAccount).AccessToken
	env.clock.Advance(2*time.Hour + 40*time.Minute)
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "120"})
	env.readToken("store") // the renewal is rate limited: the cached token is served with a warning
	env.naver.KillToken(dead)
	env.deleteToken("store", false)
	requests := env.requestsFor("SELLER", testAccount)
	env.clock.Advance(10 * time.Second)
	env.read("token/store")
	if n := env.requestsFor("SELLER", testAccount) - requests; n != 0 {
		t.Errorf("%d token requests 10 s after Naver answered 429 with Retry-After 120", n)
	}
}

// Promise (issue 16 defect 10): "Say what is true, in the read's warnings, in metrics and in
// status" — status was fixed to say reads share the failure until the back-off ends, but a
// drop with no token cached still answers "the next read asks Naver" while the back-off is
// ahead, and the next read indeed asks nothing.
func TestDropWarningSaysWhenTheNextReadAsks(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusTooManyRequests})
	env.read("token/store") // 429: a 30 s back-off, no token
	resp := env.deleteToken("store", false)
	requests := env.requestsFor("SELLER", testAccount)
	env.read("token/store")
	asked := env.requestsFor("SELLER", testAccount) - requests
	if resp != nil && len(resp.Warnings) > 0 && strings.Contains(resp.Warnings[0], "the next read asks Naver") && asked == 0 {
		t.Errorf("the drop's warning %q is untrue: the next read asked nothing (back-off)", resp.Warnings[0])
	}
}

// Promise (README, Failures): "After a failure the key backs off (... longer when Naver's
// Retry-After asks for more ...) and reads in that time share the error instead of asking again." When the
// token expires during the back-off, the periodic run evicts the key's state, back-off and
// last error with it: the next read asks Naver at once, 2 minutes into a 5-minute
// Retry-After.
func TestExpiryEvictionKeepsRetryAfter(t *testing.T) {
	env := newTestEnv(t)
	env.readTokenWithoutRetries()
	env.clock.Advance(3*time.Hour - time.Minute) // a minute left
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "300"})
	env.readToken("store") // rate limited: the cached token is served with a warning
	env.clock.Advance(2 * time.Minute)
	env.periodic(context.Background()) // the token expired: the key is evicted
	requests := env.requestsFor("SELLER", testAccount)
	env.read("token/store")
	if n := env.requestsFor("SELLER", testAccount) - requests; n != 0 {
		t.Errorf("%d token requests 2 minutes into Naver's Retry-After of 5 minutes", n)
	}
}

// Promise (README): "Tokens are kept in Vault storage ... so a restart or leader change does
// not cause a burst of requests"; "Naver is asked only when it must issue a new token". One
// failed storage write when a renewal publishes the new token is only logged ("cached in
// memory only") and never retried, not even by the periodic runs of the next hour: storage
// keeps the old token, in Naver's window, so after a restart the read asks Naver while the
// new token has hours left — a needless request, which Naver penalises.
func TestFailedTokenWriteIsRetried(t *testing.T) {
	env := newTestEnv(t)
	fs := &flakyStorage{Storage: env.storage}
	env.storage = fs
	env.b = env.newBackend()
	env.readTokenWithoutRetries()
	env.clock.Advance(2*time.Hour + 40*time.Minute) // in the window: the next read renews
	fs.arm("put", tokenStoragePrefix, 1)
	renewed := env.readToken("store").Data["access_token"]
	for i := 0; i < 60; i++ { // an hour of periodic runs
		env.clock.Advance(time.Minute)
		env.periodic(context.Background())
	}
	env.b = env.newBackend() // restart
	resp, err := env.read("token/store")
	if msg := errorText(resp, err); msg != "" || resp.Data["access_token"] != renewed {
		t.Errorf("after the restart the renewed token (2 hours left) is not served: %q", msg)
	}
	if n := env.requestsFor("SELLER", testAccount); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	env.assertCompliant()
}

// Defect 7: one unreadable role (stored by a newer plugin before a rollback, or damaged)
// made status, status/<healthy role> and the eviction check fail, and could be neither
// deleted nor overwritten. Now it is reported and never blocks another role.
func TestUnreadableRoleNeverBlocksOthers(t *testing.T) {
	breakings := []struct {
		name   string
		break_ func(env *testEnv)
		reason string
	}{
		{"stored by a newer plugin", func(env *testEnv) {
			env.rewriteStored(roleStoragePrefix+"bad", func(m map[string]any) { m["format"] = roleFormat + 1 })
		}, "newer version of the plugin"},
		{"damaged", func(env *testEnv) {
			if err := env.storage.Put(context.Background(), &logical.StorageEntry{Key: roleStoragePrefix + "bad", Value: []byte(`{"type": "SELL`)}); err != nil {
				t.Fatal(err)
			}
		}, "decoding role"},
	}
	for _, br := range breakings {
		t.Run(br.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure()
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
			env.mustWrite("roles/gone", map[string]any{"type": "SELLER", "account_id": "ncp_gone"})
			env.mustWrite("roles/bad", map[string]any{"type": "SELF"})
			env.readToken("store")
			env.readToken("gone")
			br.break_(env)
			env.b = env.newBackend() // as after a rollback
			env.readToken("store")
			env.readToken("gone")

			// status answers, listing the role as unreadable with the reason.
			status := env.mustRead("status")
			unreadable, _ := status.Data["unreadable_roles"].(map[string]any)
			if reason, _ := unreadable["bad"].(string); !strings.Contains(reason, br.reason) {
				t.Errorf("status unreadable_roles = %v, want bad with a reason saying %q", status.Data["unreadable_roles"], br.reason)
			}
			if len(status.Warnings) != 1 || !strings.Contains(status.Warnings[0], "cannot be read") {
				t.Errorf("status warnings %q", status.Warnings)
			}
			if r := env.mustRead("status/store"); r.Data["cached"] != true {
				t.Errorf("status/store: %v", r.Data)
			}

			// The eviction check skips it: deleting the only role of ncp_gone evicts its token.
			if resp, err := env.request(env.b, logical.DeleteOperation, "roles/gone", nil); errorText(resp, err) != "" {
				t.Fatalf("delete roles/gone: %s", errorText(resp, err))
			}
			env.periodic(context.Background())
			// Evicted: no longer cached; stored until it expires, marked as named by no role.
			if stored := env.storedToken("SELLER", "ncp_gone"); env.cachedToken("SELLER", "ncp_gone") != nil || stored == nil || !stored.Unnamed {
				t.Error("the token of a deleted role was kept: the eviction check failed on the unreadable role")
			}
			if env.cachedToken("SELLER", testAccount) == nil {
				t.Error("the token of a healthy role was evicted")
			}
			if !strings.Contains(env.logs.String(), "skipping a role that cannot be read") {
				t.Error("no warning about the skipped role")
			}

			// A partial update cannot be merged into it: refused, saying to give it all.
			resp, err := env.write("roles/bad", map[string]any{"ttl": "1h"})
			if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(errorText(resp, err), "full definition") {
				t.Errorf("partial update of an unreadable role: %d %q", httpStatus(resp, err), errorText(resp, err))
			}
			// A full definition replaces it.
			env.mustWrite("roles/bad", map[string]any{"type": "SELLER", "account_id": "ncp_new"})
			if r := env.mustRead("roles/bad"); r.Data["account_id"] != "ncp_new" {
				t.Errorf("overwritten role reads %v", r.Data)
			}
			if r := env.mustRead("status"); len(r.Data["unreadable_roles"].(map[string]any)) != 0 || len(r.Warnings) != 0 {
				t.Errorf("after the overwrite, status still reports %v %q", r.Data["unreadable_roles"], r.Warnings)
			}

			// Deleting one always works.
			br.break_(env)
			if resp, err := env.request(env.b, logical.DeleteOperation, "roles/bad", nil); errorText(resp, err) != "" {
				t.Fatalf("delete of an unreadable role: %s", errorText(resp, err))
			}
			if entry, _ := env.storage.Get(context.Background(), roleStoragePrefix+"bad"); entry != nil {
				t.Error("the unreadable role is still stored")
			}
			if r := env.mustRead("status"); len(r.Data["unreadable_roles"].(map[string]any)) != 0 {
				t.Errorf("after the delete, status still reports %v", r.Data["unreadable_roles"])
			}
		})
	}
}

// pausingStorage stops the nth Get of one key until released, so a test can hold a request
// between reading a role and storing it.
type pausingStorage struct {
	logical.Storage
	mu      sync.Mutex
	key     string
	n       int // the Get to stop: 1 is the next one
	paused  chan struct{}
	release chan struct{}
}

func (p *pausingStorage) pauseGet(key string, n int) (paused, release chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.key, p.n, p.paused, p.release = key, n, make(chan struct{}), make(chan struct{})
	return p.paused, p.release
}

func (p *pausingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := p.Storage.Get(ctx, key)
	p.mu.Lock()
	var paused, release chan struct{}
	if key == p.key && p.n > 0 {
		p.n--
		if p.n == 0 {
			paused, release = p.paused, p.release
		}
	}
	p.mu.Unlock()
	if paused != nil {
		close(paused)
		<-release
	}
	return entry, err
}

// Defect 8: a role write merged into the role it read before any lock. An account switch
// racing a ttl write both answered success, and the role silently kept the old account:
// apps kept getting the previous seller's tokens.
func TestConcurrentRoleWritesLoseNoUpdate(t *testing.T) {
	env := newTestEnv(t)
	storage := &pausingStorage{Storage: &logical.InmemStorage{}}
	env.storage = storage
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": "ncp_old"})
	env.readToken("store")

	// The ttl write stops after reading the role to merge into (its second Get of the role:
	// the first is Vault's existence check).
	paused, release := storage.pauseGet(roleStoragePrefix+"store", 2)
	ttlDone := make(chan error, 1)
	go func() {
		resp, err := env.write("roles/store", map[string]any{"ttl": "1h"})
		if msg := errorText(resp, err); msg != "" {
			err = &stringError{msg}
		}
		ttlDone <- err
	}()
	<-paused
	switchDone := make(chan error, 1)
	go func() {
		resp, err := env.write("roles/store", map[string]any{"account_id": "ncp_new"})
		if msg := errorText(resp, err); msg != "" {
			err = &stringError{msg}
		}
		switchDone <- err
	}()
	// Before the fix the switch completes while the ttl write is paused; after it, the
	// switch waits for the ttl write. Either way, give it the time to get as far as it can.
	select {
	case err := <-switchDone:
		switchDone <- err
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	for _, ch := range []chan error{ttlDone, switchDone} {
		if err := <-ch; err != nil {
			t.Fatalf("a role write failed: %v", err)
		}
	}

	r := env.mustRead("roles/store")
	if r.Data["account_id"] != "ncp_new" || r.Data["ttl"] != int64(3600) {
		t.Fatalf("both writes succeeded, but the role is %v: want account_id ncp_new and ttl 3600", r.Data)
	}
	if tok := env.readToken("store"); tok.Data["account_id"] != "ncp_new" {
		t.Errorf("token read for %v, want ncp_new", tok.Data["account_id"])
	}
}

type stringError struct{ s string }

func (e *stringError) Error() string { return e.s }
