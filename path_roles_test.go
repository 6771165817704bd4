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
	want := map[string]any{"type": "SELLER", "account_id": testAccount, "ttl": int64(3600), "lease": true, "min_remaining_ttl": int64(0)}
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
