package navercommerce

// Issue 16, defects 7 and 8: a role that cannot be read, and role writes that race. Each
// test failed before its fix.

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

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
