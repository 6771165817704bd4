package navercommerce

// What we know about tokens: a key, a cached token and its lives, and how tokens are
// published, stored, dropped, evicted and bounded when Naver hands one back.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// tokenKey identifies a token at Naver: roles naming the same account share it.
type tokenKey struct {
	ClientID  string `json:"client_id"`
	Type      string `json:"type"`
	AccountID string `json:"account_id,omitempty"`
}

func (k tokenKey) String() string {
	return k.ClientID + "|" + k.Type + "|" + k.AccountID
}

// storageKey names the key's storage entry without putting identifiers in a path.
func (k tokenKey) storageKey() string {
	sum := sha256.Sum256([]byte(k.String()))
	return tokenStoragePrefix + hex.EncodeToString(sum[:16])
}

// cachedToken is a token with what the cache needs to know about it. Values are immutable
// once published, so readers need no lock.
type cachedToken struct {
	Format int `json:"format,omitempty"` // see storage_format.go
	accessToken
	Key tokenKey `json:"key"`
	// Credentials ties the token to the config it was fetched with (see credentialsID).
	Credentials string `json:"credentials"`
	// FetchedAt is when the token was requested.
	FetchedAt time.Time `json:"fetched_at"`
}

// life is how long the token can still be used, as far as we can be sure.
func (t *cachedToken) life(now time.Time) time.Duration { return t.ExpiresAt.Sub(now) }

// naverLife is the most life Naver may think the token has: the 30-minute rule is judged on it.
func (t *cachedToken) naverLife(now time.Time) time.Duration {
	if t.LatestExpiry.IsZero() { // stored before the field existed
		return t.ExpiresAt.Sub(now)
	}
	return t.LatestExpiry.Sub(now)
}

// renewAt is when Naver will issue a new token for the key, and so when it is renewed.
func (t *cachedToken) renewAt() time.Time {
	if t.LatestExpiry.IsZero() {
		return t.ExpiresAt.Add(-refreshWindow)
	}
	return t.LatestExpiry.Add(-refreshWindow)
}

// boundHandedBack: if Naver handed back the token already known (cached, or dropped by an
// operator), it thinks 30 minutes or more are left. Its answer never extends what is known
// of the token's life, and the key does not ask again for a while.
func (c *tokenCache) boundHandedBack(ks *keyState, known, fetched *cachedToken) {
	if known == nil || known.Credentials != fetched.Credentials {
		known = ks.dropped.Load()
	}
	if known == nil || known.Credentials != fetched.Credentials || known.AccessToken != fetched.AccessToken {
		return
	}
	if known.ExpiresAt.Before(fetched.ExpiresAt) {
		fetched.ExpiresAt = known.ExpiresAt
	}
	if !known.LatestExpiry.IsZero() && known.LatestExpiry.Before(fetched.LatestExpiry) {
		fetched.LatestExpiry = known.LatestExpiry
	}
	c.logger.Warn("naver handed back the cached token; not asking again for a while", "type", ks.key.Type, "retry_after", sameTokenPause)
	ks.mu.Lock()
	ks.notBefore = c.now().Add(sameTokenPause)
	ks.mu.Unlock()
}

// publishMemory makes tok the key's token in memory, unless the credentials changed.
func (c *tokenCache) publishMemory(ks *keyState, tok *cachedToken) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.generation.Load() == ks.gen {
		ks.token.Store(tok)
	}
}

// publish makes tok the key's token in memory and storage, unless the credentials changed
// while it was being fetched.
func (c *tokenCache) publish(ctx context.Context, s logical.Storage, ks *keyState, tok *cachedToken) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.generation.Load() != ks.gen {
		return nil
	}
	ks.token.Store(tok)
	stored := *tok
	stored.Format = tokenFormat
	entry, err := logical.StorageEntryJSON(tok.Key.storageKey(), &stored)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

func (c *tokenCache) load(ctx context.Context, s logical.Storage, key tokenKey) (*cachedToken, error) {
	entry, err := s.Get(ctx, key.storageKey())
	if err != nil || entry == nil {
		return nil, err
	}
	var tok cachedToken
	if err := decodeEntry(entry, "cached token", &tok); err != nil {
		return nil, err
	}
	if tok.Key != key {
		return nil, nil
	}
	return &tok, nil
}

// purge forgets every token, in memory and (when s is not nil) in storage: the credentials
// changed, and a token of other credentials must never be served. The request logs stay.
func (c *tokenCache) purge(ctx context.Context, s logical.Storage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation.Add(1)
	c.entries.Clear()
	if s == nil {
		return nil
	}
	keys, err := logical.CollectKeysWithPrefix(ctx, s, tokenStoragePrefix)
	if err != nil {
		return fmt.Errorf("listing cached tokens: %w", err)
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return fmt.Errorf("deleting cached token: %w", err)
		}
	}
	return nil
}

// drop forgets one key's token and failures, in memory and storage: the next read asks
// Naver (an operator knows the token is dead at Naver, e.g. after a seller re-authorised).
func (c *tokenCache) drop(ctx context.Context, s logical.Storage, key tokenKey) error {
	// After a restart the token may be in storage only: remember it all the same.
	stored, err := c.load(ctx, s, key)
	if err != nil {
		c.logger.Warn("reading the token to drop failed", "type", key.Type, "error", err)
	}
	ks := c.state(key)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if tok := ks.token.Swap(nil); tok != nil {
		ks.dropped.Store(tok)
	} else if stored != nil {
		ks.dropped.Store(stored)
	}
	ks.mu.Lock()
	ks.failures, ks.backoffUntil, ks.backoffErr, ks.nextBackground, ks.notBefore = 0, time.Time{}, nil, time.Time{}, time.Time{}
	ks.mu.Unlock()
	if err := s.Delete(ctx, key.storageKey()); err != nil {
		return fmt.Errorf("deleting cached token: %w", err)
	}
	return nil
}

// evict forgets a key no role names, or whose token expired, in memory and storage.
// seen is the token the decision was made on: if another has been published since (a read
// renewed it meanwhile), nothing is evicted. The write lock orders this against publish.
func (c *tokenCache) evict(ctx context.Context, s logical.Storage, ks *keyState, seen *cachedToken) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ks.token.Load() != seen {
		return nil
	}
	c.entries.CompareAndDelete(ks.key, ks)
	if c.generation.Load() != ks.gen {
		return nil
	}
	return s.Delete(ctx, ks.key.storageKey())
}

// evictKey forgets a key no role names any more, in memory and storage.
func (c *tokenCache) evictKey(ctx context.Context, s logical.Storage, key tokenKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries.Delete(key)
	return s.Delete(ctx, key.storageKey())
}

// forget drops the in-memory copy of the token stored under storageKey (another node wrote it).
func (c *tokenCache) forget(storageKey string) {
	c.entries.Range(func(k, v any) bool {
		if k.(tokenKey).storageKey() == storageKey {
			v.(*keyState).token.Store(nil)
			return false
		}
		return true
	})
}

// seed publishes a token fetched outside get (the SELF token that verified a new config).
func (c *tokenCache) seed(ctx context.Context, s logical.Storage, tok *cachedToken) error {
	ks := c.state(tok.Key)
	c.boundHandedBack(ks, ks.token.Load(), tok)
	return c.publish(ctx, s, ks, tok)
}

// fresh reports whether the key holds a token of credentials (in memory or storage) that
// Naver would hand back: asking for it now would be a needless request.
func (c *tokenCache) fresh(ctx context.Context, s logical.Storage, key tokenKey, credentials string) bool {
	now := c.now()
	if v, ok := c.entries.Load(key); ok {
		if tok := v.(*keyState).token.Load(); tok != nil && tok.Credentials == credentials {
			return tok.naverLife(now) >= refreshWindow
		}
	}
	tok, err := c.load(ctx, s, key)
	return err == nil && tok != nil && tok.Credentials == credentials && tok.naverLife(now) >= refreshWindow
}

// useCredentials tells the cache which credentials are current; when they differ from
// the last ones, memory is dropped (storage was purged by the node that changed them).
// Invalidations with unchanged credentials keep what is cached and in flight.
func (c *tokenCache) useCredentials(credentials string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.credentials == credentials {
		return
	}
	if c.credentials != "" {
		c.generation.Add(1)
		c.entries.Clear()
	}
	c.credentials = credentials
}

// credentialsID fingerprints what a token depends on, so a stored token from other
// credentials is recognised after a restart. It is a one-way hash: the secret cannot be
// recovered from it.
func credentialsID(clientID, secretPrefix, baseURL string) string {
	sum := sha256.Sum256([]byte("navercommerce-token-cache\x00" + clientID + "\x00" + secretPrefix + "\x00" + baseURL))
	return hex.EncodeToString(sum[:16])
}
