package navercommerce

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// rewriteStored rewrites a storage entry through edit, as raw JSON.
func (e *testEnv) rewriteStored(key string, edit func(map[string]any)) {
	e.t.Helper()
	ctx := context.Background()
	entry, err := e.storage.Get(ctx, key)
	if err != nil || entry == nil {
		e.t.Fatalf("no entry %s: %v", key, err)
	}
	var m map[string]any
	if err := json.Unmarshal(entry.Value, &m); err != nil {
		e.t.Fatal(err)
	}
	edit(m)
	raw, err := json.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.storage.Put(ctx, &logical.StorageEntry{Key: key, Value: raw}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) storedFormat(key string) any {
	e.t.Helper()
	e.b.WaitIdle() // a read's token is stored after its answer
	entry, err := e.storage.Get(context.Background(), key)
	if err != nil || entry == nil {
		e.t.Fatalf("no entry %s: %v", key, err)
	}
	var m map[string]any
	if err := json.Unmarshal(entry.Value, &m); err != nil {
		e.t.Fatal(err)
	}
	return m["format"]
}

// Entries written before storage formats existed (format 0: what v0.1 stored) are read,
// upgraded, and written back in the current format by the next write.
func TestStorageFormatUpgrade(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store")
	tokenKey := tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount}.StorageKey()
	for _, key := range []string{configStorageKey, roleStoragePrefix + "store", tokenKey} {
		if f := env.storedFormat(key); f != float64(1) {
			t.Fatalf("%s stored in format %v, want 1", key, f)
		}
		// Back to what v0.1 wrote: no format, no fields added since.
		env.rewriteStored(key, func(m map[string]any) {
			for _, k := range []string{"format", "latest_expiry", "max_token_requests_per_hour", "no_lease"} {
				delete(m, k)
			}
		})
	}

	env.b = env.newBackend() // the upgraded plugin starts
	requests := env.naver.TokenRequests()
	second := env.readToken("store")
	if second.Data["access_token"] != first.Data["access_token"] || env.naver.TokenRequests() != requests {
		t.Error("the token stored in format 0 was not served from storage")
	}
	cfg, err := env.read("config")
	if err != nil || cfg.Data["max_token_requests_per_hour"] != defaultMaxRequestsHour || cfg.Data["client_id"] != testClientID {
		t.Errorf("config in format 0 read as %v (%v)", cfg.Data, err)
	}
	role, err := env.read("roles/store")
	if err != nil || role.Data["lease"] != true || role.Data["account_id"] != testAccount {
		t.Errorf("role in format 0 read as %v (%v)", role.Data, err)
	}

	env.mustWrite("roles/store", map[string]any{"ttl": "1h"})
	env.mustWrite("config", map[string]any{"max_retries": 1})
	for _, key := range []string{configStorageKey, roleStoragePrefix + "store"} {
		if f := env.storedFormat(key); f != float64(1) {
			t.Errorf("%s rewritten in format %v, want 1", key, f)
		}
	}
}

// A newer plugin's format is refused with a clear error, never misread.
func TestStorageFormatFromTheFuture(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELF"})
	env.rewriteStored(roleStoragePrefix+"store", func(m map[string]any) { m["format"] = roleFormat + 1 })
	env.b = env.newBackend()
	_, err := env.read("roles/store")
	if err == nil || !strings.Contains(err.Error(), "newer version of the plugin") {
		t.Errorf("error %v, want one saying a newer plugin stored it", err)
	}
}

// A token entry a newer plugin wrote is kept by every sweep, not only the first (a rollback
// must not lose what the newer version knows): the second sweep found it unchanged and,
// remembering no expiry for it, judged it stale.
func TestEverySweepKeepsTokenEntriesOfANewerFormat(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELF"})
	env.readToken("store")
	env.b.WaitIdle()
	key := tokenKey{ClientID: testClientID, Type: "SELF"}.StorageKey()
	env.rewriteStored(key, func(m map[string]any) { m["format"] = tokenFormat + 1 })
	env.b = env.newBackend()
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		env.sweepAndWaitAnHour(ctx)
		if e, err := env.storage.Get(ctx, key); err != nil || e == nil {
			t.Fatalf("after sweep %d the entry of a newer format is gone (%v)", i, err)
		}
	}
}

// A damaged token entry (not of a newer format) is deleted by the sweep: the sweep remembers
// what it read of it, as the delete deletes only an entry the sweep read unchanged.
func TestSweepDeletesADamagedTokenEntry(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELF"})
	env.readToken("store")
	env.b.WaitIdle()
	ctx := context.Background()
	key := tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: "damaged"}.StorageKey()
	if err := env.storage.Put(ctx, &logical.StorageEntry{Key: key, Value: []byte(`{"format":`)}); err != nil {
		t.Fatal(err)
	}
	env.b = env.newBackend()
	for range 3 {
		env.sweepAndWaitAnHour(ctx)
	}
	if e, _ := env.storage.Get(ctx, key); e != nil {
		t.Errorf("after 3 sweeps the damaged entry %s is still stored", key)
	}
}

// sweepAndWaitAnHour runs a periodic run (its first after a start sweeps every stored token),
// waits for the writes it started, and moves the clock past the next sweep's time.
func (e *testEnv) sweepAndWaitAnHour(ctx context.Context) {
	e.periodic(ctx)
	e.b.WaitIdle()
	e.clock.Advance(core.SweepInterval + time.Minute)
}
