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
