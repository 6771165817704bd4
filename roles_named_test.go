package navercommerce

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// A many-seller role's token stops being cached (and renewed) once no role names its key,
// however the plugin came to hold it. Found by make sim (seed 113 of the long shape and 28
// more): a change of the role that still named the key dropped the role from what the
// plugin knew of the key's readers, so the role's later delete went unnoticed.
func TestManySellerTokenEvictedWhenItsRoleGoes(t *testing.T) {
	tests := []struct {
		name string
		// before runs after the seller's first read, before the role is deleted.
		before func(env *testEnv)
		// deleteRole deletes the role (through the plugin, or behind its back).
		deleteRole func(env *testEnv)
		// atOnce: the token stops being cached before the delete returns (through this
		// node's plugin); otherwise by the next periodic run.
		atOnce bool
	}{
		{
			name: "the role changed but still named the key (seed 113)",
			before: func(env *testEnv) {
				env.mustWrite("roles/sellers", map[string]any{"allowed_account_ids": "ncp_*"})
				env.periodic(context.Background())
				env.clock.Advance(90 * time.Minute) // renewed behind the scenes, not read since
				env.periodic(context.Background())
			},
			deleteRole: deleteThroughPlugin,
			atOnce:     true,
		},
		{
			name: "loaded at a restart, not read since",
			before: func(env *testEnv) {
				env.b = env.newBackend()
				env.periodic(context.Background()) // the first sweep loads the stored token
			},
			deleteRole: deleteThroughPlugin,
			atOnce:     true,
		},
		{
			name: "loaded at a restart after the role went while the plugin was down",
			before: func(env *testEnv) {
				env.b.WaitIdle()
			},
			deleteRole: func(env *testEnv) {
				// Another node deleted it and was gone before it marked the token unnamed.
				if err := env.storage.Delete(context.Background(), roleStoragePrefix+"sellers"); err != nil {
					env.t.Fatal(err)
				}
				env.b = env.newBackend()
			},
		},
		{
			name: "deleted on another node (invalidation)",
			before: func(env *testEnv) {
				env.mustWrite("roles/sellers", map[string]any{"allowed_account_ids": "ncp_*"})
				env.periodic(context.Background())
			},
			deleteRole: func(env *testEnv) {
				if err := env.storage.Delete(context.Background(), roleStoragePrefix+"sellers"); err != nil {
					env.t.Fatal(err)
				}
				env.b.InvalidateKey(context.Background(), roleStoragePrefix+"sellers")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure()
			env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
			env.mustWrite("roles/other", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_kept"})
			env.readToken("sellers/" + testAccount)
			env.readToken("other/ncp_kept")
			tt.before(env)

			tt.deleteRole(env)
			if tt.atOnce && env.cachedToken("SELLER", testAccount) != nil {
				t.Error("the token of a seller no role names is cached after the role's delete returned")
			}
			env.periodic(context.Background())
			if env.cachedToken("SELLER", testAccount) != nil {
				t.Fatal("the token of a seller no role names is still cached")
			}
			if stored := env.storedToken("SELLER", testAccount); stored == nil || !stored.Unnamed {
				t.Errorf("its stored token is not marked unnamed: %+v", stored)
			}
			// A restart does not bring it back; the other role's seller stays, served from
			// storage (a start reads stored tokens when they are asked for, not all at once).
			env.b = env.newBackend()
			env.periodic(context.Background())
			if env.cachedToken("SELLER", testAccount) != nil {
				t.Error("after a restart the unnamed token came back")
			}
			if list := statusKeys(t, env.statusList(nil)); list["SELLER|"+testAccount] != nil || list["SELLER|ncp_kept"]["state"] != stateCached {
				t.Errorf("status after a restart lists %v: want the kept seller cached, the unnamed one absent", list)
			}
			s := env.mustRead("status/other/ncp_kept")
			if !reflect.DeepEqual(s.Data["roles"], []string{"other"}) || s.Data["cached"] != true {
				t.Errorf("status of the kept seller after a restart: roles %v cached %v, want [other] true", s.Data["roles"], s.Data["cached"])
			}
			env.assertCompliant()
		})
	}
}

func deleteThroughPlugin(env *testEnv) {
	env.t.Helper()
	if _, err := env.request(env.b, logical.DeleteOperation, "roles/sellers", nil); err != nil {
		env.t.Fatal(err)
	}
}
