package navercommerce

// Found by an adversarial review of the token lifecycle (issue 9, README "How tokens are
// cached and renewed"): each test failed before its fix.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// hookStorage lets a test stop one storage operation on a chosen key (or prefix) until
// released.
type hookStorage struct {
	logical.Storage
	mu      sync.Mutex
	op      string // "get", "put" or "delete"
	prefix  string
	blocked chan struct{} // closed when a matching operation arrives
	release chan struct{}
}

func (h *hookStorage) arm(op, prefix string) (blocked, release chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.op, h.prefix, h.blocked, h.release = op, prefix, make(chan struct{}), make(chan struct{})
	return h.blocked, h.release
}

// wait holds an operation op on key if it is the one armed, once.
func (h *hookStorage) wait(op, key string) {
	h.mu.Lock()
	blocked, release := h.blocked, h.release
	if h.prefix != "" && h.op == op && strings.HasPrefix(key, h.prefix) {
		h.prefix = "" // once
	} else {
		blocked = nil
	}
	h.mu.Unlock()
	if blocked != nil {
		close(blocked)
		<-release
	}
}

// Get holds the answer, not the question: what was read stays what storage held then.
func (h *hookStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := h.Storage.Get(ctx, key)
	h.wait("get", key)
	return entry, err
}

func (h *hookStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	h.wait("put", entry.Key)
	return h.Storage.Put(ctx, entry)
}

func (h *hookStorage) Delete(ctx context.Context, key string) error {
	h.wait("delete", key)
	return h.Storage.Delete(ctx, key)
}

func (e *testEnv) rawRequest(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage, MountPoint: testMount}
	return e.b.HandleRequest(context.Background(), req)
}

// Promise: "A handed-back token never gains life ... never a dead token"; "Naver is asked
// only when it must issue a new token". A config write that changes only proxy_url runs
// verify_connection, which asks Naver for the SELF token while the cache holds one with an
// hour left (a needless request), and seeds Naver's answer into the cache without the
// handed-back check: in reused-token mode the token is then served for 3 hours while it
// dies at Naver after 1.
func TestReviewProxyChangeVerificationSeedsHandedBackToken(t *testing.T) {
	for _, reused := range []bool{false, true} {
		t.Run(map[bool]string{false: "remaining-life mode", true: "reused-token mode"}[reused], func(t *testing.T) {
			env := newTestEnv(t)
			env.transport = &slowNetwork{clock: env.clock} // straight to the emulator, proxy_url or not
			env.b = env.newBackend()
			env.naver.SetReusedTokenFullLifetime(reused)
			env.configure() // verifies: the SELF token is cached
			env.mustWrite("roles/self", map[string]any{"type": "SELF"})
			first := env.readToken("self")
			env.clock.Advance(2 * time.Hour)

			env.mustWrite("config", map[string]any{"proxy_url": "http://127.0.0.1:3128"})
			env.assertCompliant() // the verification was a needless request

			resp := env.readToken("self")
			if resp.Data["access_token"] != first.Data["access_token"] {
				t.Fatal("expected Naver to hand back the same token")
			}
			if left := time.Duration(resp.Data["expires_in"].(int64)) * time.Second; left > time.Hour+time.Second {
				t.Errorf("token served with expires_in %s (lease %s); it dies at Naver in 1h", left, resp.Secret.TTL)
			}
			env.clock.Advance(time.Hour + time.Minute)
			r, err := env.read("token/self")
			if err == nil && !r.IsError() && !env.naver.TokenValid(r.Data["access_token"].(string)) {
				t.Errorf("served a token Naver no longer accepts, expires_in %v", r.Data["expires_in"])
			}
		})
	}
}

// Promise (Decisions): a handed-back token "never extends the token's known expiry, even
// after an operator drop". After a restart (plugin reload, leader change) the key is not in
// memory, so the drop records nothing, and the token Naver hands back gains a full 3 hours.
func TestReviewDropAfterRestartExtendsHandedBackToken(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetReusedTokenFullLifetime(true)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store")
	env.clock.Advance(time.Hour)

	env.b = env.newBackend() // restart: the token is known from storage only
	if resp, err := env.request(env.b, logical.DeleteOperation, "token/store", map[string]any{"force": true}); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	second := env.readToken("store")
	if second.Data["access_token"] != first.Data["access_token"] {
		t.Fatal("expected Naver to hand back the same token")
	}
	if left := time.Duration(second.Data["expires_in"].(int64)) * time.Second; left > 2*time.Hour {
		t.Errorf("the handed-back token is said to have %s left, it has 2h", left)
	}
}

// Promise: "Back-offs and tokens belong to the credentials they were made with: a failure of
// the old secret never delays the new one". pathConfigWrite purges (new generation) before it
// makes the new config current; a read in between still uses the old config, but its keyState
// is of the new generation, so its failure's back-off is then obeyed by the new credentials.
func TestReviewOldCredentialsFailureDuringPurgeBlocksNewOnes(t *testing.T) {
	env := newTestEnv(t)
	hs := &hookStorage{Storage: env.storage}
	env.storage = hs
	env.b = env.newBackend()
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0, "background_refresh": false})
	env.mustWrite("roles/a", map[string]any{"type": "SELLER", "account_id": "ncp_a"})
	env.mustWrite("roles/b", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("a") // a stored token: the purge has something to retire

	// The operator re-issued the secret in the API center and now writes it to Vault.
	env.naver.SetClientSecret(testClientID, otherSecret)
	blocked, release := hs.arm("put", tokenStoragePrefix)
	done := make(chan error, 1)
	go func() {
		resp, err := env.rawRequest(logical.UpdateOperation, "config", map[string]any{"client_secret": otherSecret, "verify_connection": false})
		if err == nil && resp.IsError() {
			err = resp.Error()
		}
		done <- err
	}()
	<-blocked // the write is purging the old tokens
	resp, err := env.read("token/b")
	t.Logf("read during the write (old config): %d %s", httpStatus(resp, err), errorText(resp, err))
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	resp, err = env.read("token/b")
	if msg := errorText(resp, err); msg != "" {
		t.Errorf("the new credentials obeyed the old ones' back-off: %s", msg)
	}
	// The read during the write is made with the old secret (a failure) or, once the new
	// config is in force, the new one: one or two requests, never one more.
	if n := env.requestsFor("SELLER", testAccount); n < 1 || n > 2 {
		t.Errorf("%d requests for the key, want 1 or 2", n)
	}
}

// Promise: "Naver is asked only when it must issue a new token"; Invalidate "drops the
// in-memory copy". An invalidation of config with unchanged credentials (a performance
// secondary seeing the primary rewrite the config, e.g. an idempotent Terraform apply)
// bumps the cache generation, so the token a renewal in flight gets is published neither in
// memory nor in storage; the next read asks Naver again while the token has 3 hours left.
func TestReviewConfigInvalidationDiscardsInFlightToken(t *testing.T) {
	tests := []struct {
		name   string
		reused bool          // emulator's reused-token mode
		later  time.Duration // when the next read comes after the discarded renewal
	}{
		// The next read asks while the discarded token has 3 hours left: a needless request.
		{"next read at once", false, 0},
		// The next read comes after the stored (old) token expired: Naver hands back the
		// discarded token, unknown to the cache, with expires_in 10800; it is served with 3h
		// though it dies in 2h20m (a dead token for the last 40 minutes of its lease).
		{"next read after the old token expired, reused-token mode", true, 40 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			net := &slowNetwork{clock: env.clock}
			env.useTransport(net)
			env.naver.SetReusedTokenFullLifetime(tt.reused)
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"verify_connection": false, "max_retries": 0, "background_refresh": false})
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
			env.readToken("store")
			env.clock.Advance(2*time.Hour + 31*time.Minute)

			net.release = make(chan struct{})
			readDone := make(chan *logical.Response, 1)
			go func() {
				resp, _ := env.rawRequest(logical.ReadOperation, "token/store", nil)
				readDone <- resp
			}()
			waitFor(t, func() bool { return net.flying.Load() == 1 })
			env.b.invalidate(context.Background(), configStorageKey) // same config in storage
			close(net.release)
			renewed := <-readDone
			if renewed == nil || renewed.IsError() {
				t.Fatalf("the renewing read failed: %v", renewed)
			}
			renewedAt := env.clock.Now()

			env.clock.Advance(tt.later)
			resp := env.readToken("store")
			if !tt.reused {
				env.assertCompliant()
				if req, issued := env.requestsFor("SELLER", testAccount), env.naver.IssuedTokens(); req != issued {
					t.Errorf("%d requests for %d new tokens: the renewed token was discarded and asked for again", req, issued)
				}
				return
			}
			if resp.Data["access_token"] != renewed.Data["access_token"] {
				t.Fatal("expected Naver to hand back the discarded token")
			}
			realLeft := renewedAt.Add(3 * time.Hour).Sub(env.clock.Now())
			if left := time.Duration(resp.Data["expires_in"].(int64)) * time.Second; left > realLeft {
				t.Errorf("token served with expires_in %s (lease %s); it dies at Naver in %s", left, resp.Secret.TTL, realLeft)
			}
			env.clock.Advance(realLeft + time.Minute)
			r, err := env.read("token/store")
			if err == nil && !r.IsError() && !env.naver.TokenValid(r.Data["access_token"].(string)) {
				t.Errorf("served a token Naver no longer accepts, expires_in %v", r.Data["expires_in"])
			}
		})
	}
}

// Promise: "Single flight. However many reads arrive for a key at once, one request goes to
// Naver" (Naver penalises concurrent token requests). The flight key includes the cache
// generation, so a read after a credential change starts a second request for the same key
// while the one made with the old credentials is still at Naver.
func TestReviewCredentialChangeMidFlightSendsConcurrentRequests(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Delay: time.Second}) // a slow answer
	oldDone := make(chan struct{})
	go func() {
		defer close(oldDone)
		env.rawRequest(logical.ReadOperation, "token/store", nil)
	}()
	waitFor(t, func() bool { return env.naver.Stats().Keys[testClientID+"|SELLER|"+testAccount].InFlight == 1 })

	env.naver.SetClientSecret(testClientID, otherSecret)
	env.mustWrite("config", map[string]any{"client_secret": otherSecret, "verify_connection": false})
	env.readToken("store")
	<-oldDone
	if m := env.naver.MaxInFlight(testClientID, "SELLER", testAccount); m > 1 {
		t.Errorf("%d token requests for one key at Naver at once", m)
	}
	env.assertCompliant()
}

// Requirement (issue 9, defect 2; README guarantee): "expired tokens and tokens of deleted
// roles are evicted from memory and storage". The periodic run only looks at keys in memory:
// after a restart, a stored token whose key is not read again is never evicted, even when
// its role is deleted and the token long expired.
func TestReviewRestartLeavesDeletedRolesTokenInStorage(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/gone", map[string]any{"type": "SELLER", "account_id": "ncp_gone"})
	env.readToken("gone")

	env.b = env.newBackend() // restart (upgrade, reload, leader change)
	if _, err := env.request(env.b, logical.DeleteOperation, "roles/gone", nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6*60; i++ {
		env.periodic(context.Background())
		env.clock.Advance(time.Minute)
	}
	if tok := env.storedToken("SELLER", "ncp_gone"); tok != nil {
		t.Errorf("6 hours after its role was deleted, a token that expired %s ago is still in storage",
			env.clock.Now().Sub(tok.ExpiresAt).Round(time.Minute))
	}
}
