package navercommerce

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
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
