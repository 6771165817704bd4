package navercommerce

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The first status after a start reads what storage holds of tokens (a sweep, in parts):
// once. A status read that waited for the sweep under way asked for another part in a busy
// loop, each in a goroutine of its own, and every one of them after the sweep ended listed and
// read every stored token again.
func TestFirstStatusAfterAStartSweepsStorageOnce(t *testing.T) {
	env := newTestEnv(t)
	storage := &countingStorage{Storage: &logical.InmemStorage{}}
	env.storage = storage
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
	st, err := env.b.getConfig(context.Background(), env.storage)
	if err != nil {
		t.Fatal(err)
	}
	const stored = 300
	now := env.clock.Now()
	for i := range stored {
		key := tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: fmt.Sprintf("ncp_%d", i)}
		tok := &cachedToken{AccessToken: fmt.Sprintf("stored-token-%d", i), TokenType: "Bearer", Key: key,
			ExpiresAt: now.Add(2 * time.Hour), LatestExpiry: now.Add(2 * time.Hour), FetchedAt: now.Add(-time.Hour),
			Credentials: st.policy.credentials, Fingerprint: tokenFingerprint(fmt.Sprintf("stored-token-%d", i))}
		if err := storeToken(context.Background(), env.storage, tok); err != nil {
			t.Fatal(err)
		}
	}
	env.b = env.newBackend() // a restart: nothing of the tokens in memory
	storage.reset()
	resp := env.mustRead("status")
	env.b.WaitIdle()
	if got := resp.Data["knowledge_complete"]; got != true {
		t.Errorf("knowledge_complete = %v after the sweep, want true", got)
	}
	if gets := storage.reset()[tokenStoragePrefix[:len(tokenStoragePrefix)-1]]; gets > stored+10 {
		t.Errorf("the first status read %d stored tokens for %d entries: storage was swept %.1f times", gets, stored, float64(gets)/stored)
	}
}

// While storage cannot tell what the plugin stored, status does not answer as if it knew: a
// status whose roles cannot be listed fails (a check reads UNKNOWN), and while the tokens
// stored before a start cannot be listed, status and status/<role> say knowledge_complete
// false with a warning (one seller's status reads that seller's own entry, so it knows);
// once storage answers they are complete again.
func TestStatusSaysWhatItCannotKnow(t *testing.T) {
	env := newTestEnv(t)
	storage := &prefixFailingStorage{Storage: &logical.InmemStorage{}}
	env.storage = storage
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
	env.readToken("sellers/ncp_a")
	env.b.WaitIdle()

	storage.set(func(f *prefixFailingStorage) { f.failList = "roles/" })
	env.b = env.newBackend() // a restart: what storage holds is to be read again
	if resp, err := env.read("status"); errorText(resp, err) == "" {
		t.Errorf("status answered while its roles could not be listed: %v", resp.Data)
	}

	storage.set(func(f *prefixFailingStorage) { f.failList = tokenStoragePrefix })
	env.b = env.newBackend()
	for path, want := range map[string]bool{"status": false, "status/sellers": false, "status/sellers/ncp_a": true} {
		resp := env.mustRead(path)
		if resp.Data["knowledge_complete"] != want {
			t.Errorf("%s: knowledge_complete = %v while storage cannot list the tokens, want %v", path, resp.Data["knowledge_complete"], want)
		}
		if !want && len(resp.Warnings) == 0 {
			t.Errorf("%s: no warning says what is not known", path)
		}
	}

	storage.set(func(f *prefixFailingStorage) { f.failList = "" })
	env.clock.Advance(time.Minute)
	env.periodic(context.Background())
	env.b.WaitIdle()
	for _, path := range []string{"status", "status/sellers"} {
		if resp := env.mustRead(path); resp.Data["knowledge_complete"] != true {
			t.Errorf("%s once storage answers: knowledge_complete = %v, warnings %q", path, resp.Data["knowledge_complete"], resp.Warnings)
		}
	}
}
