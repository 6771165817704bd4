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
//
// The same entry is also the fact the cache keeps of the key's latest token once it stops
// serving it (dropped, unusable, or of other credentials): the token string is then gone
// (AccessToken is empty, Retired says why) and only its fingerprint and lives remain, kept
// in storage until the token's latest possible expiry, so that whatever Naver answers later
// for the key is bounded by them, across restarts and periodic runs.
type cachedToken struct {
	Format int `json:"format,omitempty"` // see storage_format.go
	accessToken
	Key tokenKey `json:"key"`
	// Credentials ties the token to the config it was fetched with (see credentialsID).
	Credentials string `json:"credentials"`
	// FetchedAt is when the token was requested.
	FetchedAt time.Time `json:"fetched_at"`
	// Fingerprint identifies the token without holding it (see tokenFingerprint).
	Fingerprint string `json:"fingerprint,omitempty"`
	// Retired, when set, says why the token is no longer served; AccessToken is then empty.
	Retired string `json:"retired,omitempty"`
	// Unnamed marks a token whose key no role named when it stopped being cached: it is
	// served again if a role names the key, but not brought back into memory at start-up.
	Unnamed bool `json:"unnamed,omitempty"`
}

// Why a token is no longer served (cachedToken.Retired).
const (
	retiredDropped     = "dropped"     // an operator dropped it (DELETE token/<role>)
	retiredUnusable    = "unusable"    // Naver issued it with too little life to serve
	retiredCredentials = "credentials" // the config's credentials changed
)

// tokenFingerprint is a one-way digest of a token, so a fact can recognise a token Naver
// hands back without keeping the token itself.
func tokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte("navercommerce-token\x00" + token))
	return hex.EncodeToString(sum[:16])
}

// servable reports whether the token may be served under credentials.
func (t *cachedToken) servable(credentials string) bool {
	return t != nil && t.Retired == "" && t.AccessToken != "" && t.Credentials == credentials
}

// retired is the fact of t once it is no longer served: everything but the token itself.
func (t *cachedToken) retired(why string) *cachedToken {
	f := *t
	f.AccessToken, f.Retired = "", why
	return &f
}

// knownUntil is when nothing known of the token matters any more: its latest possible expiry.
func (t *cachedToken) knownUntil() time.Time {
	if t.LatestExpiry.After(t.ExpiresAt) {
		return t.LatestExpiry
	}
	return t.ExpiresAt
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

// renewAt is when the key's token is renewed: at a point in Naver's 30-minute window (when
// Naver issues a new token) that is stable for the key, so keys that got their tokens
// together (a mass onboarding, the end of an outage) drift apart cycle after cycle
// instead of renewing together forever. It leaves at least renewMinLife.
func (t *cachedToken) renewAt(spreadWidth time.Duration) time.Time {
	return t.renewAtOffset(t.Key.renewSpread(spreadWidth))
}

// renewAtOffset is renewAt with the key's offset into the window given.
func (t *cachedToken) renewAtOffset(offset time.Duration) time.Time {
	latest := t.LatestExpiry
	if latest.IsZero() {
		latest = t.ExpiresAt
	}
	at := latest.Add(-refreshWindow + offset)
	if last := t.ExpiresAt.Add(-renewMinLife); at.After(last) {
		at = last
	}
	if first := latest.Add(-refreshWindow); at.Before(first) {
		at = first // never before Naver would issue a new token
	}
	return at
}

// renewSpread is the key's stable offset into Naver's window, from 0 to width.
func (k tokenKey) renewSpread(width time.Duration) time.Duration {
	return spreadOffset(k.spreadHash(), width)
}

func spreadOffset(hash uint64, width time.Duration) time.Duration {
	if width <= 0 {
		return 0
	}
	return time.Duration(hash % uint64(width))
}

// spreadHash is the hash renewSpread takes the offset from.
func (k tokenKey) spreadHash() uint64 {
	// FNV-1a of k.String(), computed in place: the periodic run asks this of every key
	// every minute, and building the string and a hash.Hash for it was a tenth of the run
	// at 10,000 sellers.
	h := uint64(fnvOffset64)
	h = fnv1a(h, k.ClientID)
	h = fnv1a(h, "|")
	h = fnv1a(h, k.Type)
	h = fnv1a(h, "|")
	h = fnv1a(h, k.AccountID)
	return h
}

// FNV-1a, 64-bit (hash/fnv's constants).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// boundHandedBack: if Naver handed back a token already known (cached, dropped, or of
// other credentials), it thinks 30 minutes or more are left. Its answer never extends what
// is known of the token's life, and the key does not ask again for a while.
func (c *tokenCache) boundHandedBack(ks *keyState, fetched *cachedToken) {
	known := ks.fact.Load()
	if known == nil || known.Fingerprint != fetched.Fingerprint {
		return
	}
	if known.ExpiresAt.Before(fetched.ExpiresAt) {
		fetched.ExpiresAt = known.ExpiresAt
	}
	if !known.LatestExpiry.IsZero() && known.LatestExpiry.Before(fetched.LatestExpiry) {
		fetched.LatestExpiry = known.LatestExpiry
	}
	c.logger.Warn("naver handed back a token already known; not asking again for a while", "type", ks.key.Type, "retry_after", sameTokenPause)
	ks.mu.Lock()
	ks.notBefore = c.now().Add(sameTokenPause)
	ks.mu.Unlock()
}

// learn makes f the key's known fact unless a newer one is known.
func (ks *keyState) learn(f *cachedToken) {
	for {
		old := ks.fact.Load()
		if old != nil && old.FetchedAt.After(f.FetchedAt) {
			return
		}
		if ks.fact.CompareAndSwap(old, f) {
			return
		}
	}
}

// publish makes tok the key's token in memory and storage, unless the credentials changed
// while it was being fetched. A retired tok (an unusable answer) is stored as a fact only.
//
// With behind, only memory is written before publish returns, and tok is stored in the
// background: a read that fetched a new token is answered without waiting for a storage
// write (on Raft an fsync, paid while Vault writes the read's lease). The key is marked
// unstored until the write lands, so a failed write is retried by the periodic run; Clean
// and WaitIdle wait for it, and so does everything that changes the generation or marks
// stored tokens (under the write lock), so storage never misses a token they would have
// retired or marked. Only a crash of the plugin within that one write loses it (see
// docs/decisions.md).
func (c *tokenCache) publish(ctx context.Context, s logical.Storage, ks *keyState, tok *cachedToken, behind bool) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.generation.Load() != ks.gen {
		return nil
	}
	ks.entryMu.Lock()
	defer ks.entryMu.Unlock()
	ks.learn(tok)
	if tok.Retired == "" {
		ks.token.Store(tok)
	}
	if v, ok := c.entries.Load(ks.key); !ok || v != ks {
		// The key was evicted while the token was fetched (no role named it): a role that
		// names it again reads storage at once, so the token is stored before the readers
		// waiting on this flight are answered (see evictStored).
		behind = false
	}
	if behind {
		ks.unstored.Store(true)
		c.storing.goTracked(func() { c.storeBehind(s, ks, tok) })
		return nil
	}
	err := c.store(ctx, s, tok)
	// A token stored nowhere would be asked for again after a restart: the periodic run
	// stores it again.
	ks.unstored.Store(err != nil)
	return err
}

// storeBehind stores tok, published in memory by publish, unless the key moved on
// meanwhile: a drop stored its own fact, a newer token stores itself.
func (c *tokenCache) storeBehind(s logical.Storage, ks *keyState, tok *cachedToken) {
	ks.entryMu.Lock()
	defer ks.entryMu.Unlock()
	if ks.fact.Load() != tok && ks.token.Load() != tok {
		return
	}
	err := c.store(c.ctx, s, tok)
	ks.unstored.Store(err != nil)
	if err != nil {
		c.logger.Warn("storing token failed; it is cached in memory only", "type", ks.key.Type, "error", err)
	}
}

func (c *tokenCache) store(ctx context.Context, s logical.Storage, tok *cachedToken) error {
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

// loadStored brings the key's stored entry into memory: it becomes the key's known fact,
// and a servable token with life left becomes its cached token, which is returned. The
// entry lock orders this against drops, so a token dropped meanwhile is never published.
//
// Unlike publish it takes no cache lock: a token it loads is served only under the
// credentials it was stored with, so one loaded during a credential change is harmless.
func (c *tokenCache) loadStored(ctx context.Context, s logical.Storage, ks *keyState, credentials string) (*cachedToken, error) {
	ks.entryMu.Lock()
	defer ks.entryMu.Unlock()
	if tok := ks.token.Load(); tok.servable(credentials) {
		return tok, nil // published while this waited
	}
	stored, err := c.load(ctx, s, ks.key)
	if err != nil || stored == nil || c.generation.Load() != ks.gen {
		return nil, err
	}
	ks.learn(stored)
	if !stored.servable(credentials) || stored.life(c.now()) <= 0 {
		return nil, nil
	}
	ks.token.Store(stored)
	return stored, nil
}

// forgetMemory forgets every token in memory (the config was deleted); storage keeps them.
func (c *tokenCache) forgetMemory() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.storing.wait()
	c.generation.Add(1)
	c.entries.Clear()
}

// retireAll forgets every token in memory and keeps in storage only the facts of the
// tokens of credentials other than keep: the credentials changed, and a token of other
// credentials must never be served, but what is known of it still bounds what Naver answers
// later. The request logs stay.
func (c *tokenCache) retireAll(ctx context.Context, s logical.Storage, keep string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A token still being stored would escape the listing below.
	c.storing.wait()
	c.generation.Add(1)
	c.entries.Clear()
	keys, err := logical.CollectKeysWithPrefix(ctx, s, tokenStoragePrefix)
	if err != nil {
		return fmt.Errorf("listing cached tokens: %w", err)
	}
	for _, k := range keys {
		entry, err := s.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("reading cached token: %w", err)
		}
		var tok cachedToken
		if entry == nil {
			continue
		}
		if err := decodeEntry(entry, "cached token", &tok); err != nil || tok.Retired != "" || tok.Credentials == keep {
			continue // unreadable entries are the sweep's; facts are kept as they are
		}
		if err := c.store(ctx, s, tok.retired(retiredCredentials)); err != nil {
			return fmt.Errorf("retiring cached token: %w", err)
		}
	}
	return nil
}

// dropOutcome is what a drop did.
type dropOutcome int

const (
	droppedToken   dropOutcome = iota // the token is no longer served; the next read asks Naver
	dropNoToken                       // no token was cached for the key
	dropStillAlive                    // Naver still accepts the token: it is kept and served
	dropRenewed                       // a new token replaced the one checked meanwhile: kept
)

// tokenAcceptedFunc asks Naver whether it still accepts a token (an authenticated call).
type tokenAcceptedFunc func(ctx context.Context, token string) (bool, error)

// drop stops serving the key's token, keeping its fact in memory and storage, so that the
// next read asks Naver while whatever Naver answers stays bounded by what is known of it.
// Unless force is set, Naver is asked first whether it still accepts the token: a token
// Naver accepts is kept (asking for a new one while it has 30 minutes or more left is
// exactly what Naver penalises).
//
// roleChanges is as in get: a token the drop keeps and loads into memory after its role
// stopped naming the key is checked by the periodic run.
func (c *tokenCache) drop(ctx context.Context, s logical.Storage, key tokenKey, roleChanges uint64, credentials string, force bool, accepted tokenAcceptedFunc) (dropOutcome, error) {
	ks := c.state(key)
	defer func() { c.checkIfRolesChanged(ks, roleChanges) }()
	tok := ks.token.Load()
	if !tok.servable(credentials) {
		var err error
		if tok, err = c.loadStored(ctx, s, ks, credentials); err != nil {
			return 0, fmt.Errorf("reading the cached token: %w", err)
		}
	}
	if tok == nil {
		return dropNoToken, nil
	}
	if !force {
		alive, err := accepted(ctx, tok.AccessToken)
		if err != nil {
			return 0, err
		}
		if alive {
			return dropStillAlive, nil
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	// The key's state may have been replaced while Naver was asked (an eviction, a
	// credential change): drop the token wherever it is now.
	ks = c.state(key)
	ks.entryMu.Lock()
	defer ks.entryMu.Unlock()
	cur := ks.token.Load()
	if cur == nil {
		stored, err := c.load(ctx, s, key)
		if err != nil {
			return 0, fmt.Errorf("reading the cached token: %w", err)
		}
		if stored.servable(tok.Credentials) {
			cur = stored
		}
	}
	if cur != nil && cur.Fingerprint != tok.Fingerprint {
		return dropRenewed, nil
	}
	fact := tok.retired(retiredDropped)
	// Storage first: if it fails, nothing was dropped, in memory or storage.
	if err := c.store(ctx, s, fact); err != nil {
		return 0, fmt.Errorf("storing the dropped token's fact: %w", err)
	}
	ks.token.Store(nil)
	ks.learn(fact)
	ks.mu.Lock()
	// The back-off of a failure stays (Naver may have asked for it with Retry-After); only
	// the pause after a handed-back token ends, as that token is now known to be dead.
	ks.notBefore = time.Time{}
	ks.mu.Unlock()
	return droppedToken, nil
}

// evict stops caching a key in memory (its token expired, or no role names it): it is not
// renewed any more. Its storage entry stays until the token's latest expiry (the sweep
// removes it), so a role re-created for the key meanwhile is served without a request.
// seen is the token the decision was made on: if another has been published since (a read
// renewed it meanwhile), nothing is evicted. The write lock orders this against publish.
func (c *tokenCache) evict(ks *keyState, seen *cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ks.token.Load() != seen {
		return
	}
	c.entries.CompareAndDelete(ks.key, ks)
}

// evictStored evicts ks (see evict) once its token is in storage: a token in memory only
// (its storing failed, or is still under way behind the read that fetched it) is stored
// first, so that a role naming the key again is served from storage instead of asking Naver
// for the token it would hand back. If storing fails, nothing is evicted.
func (c *tokenCache) evictStored(ctx context.Context, s logical.Storage, ks *keyState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	tok := ks.token.Load()
	if tok != nil && ks.unstored.Load() {
		c.storing.wait() // a store behind a read may land yet
		ks.entryMu.Lock()
		if ks.unstored.Load() && c.generation.Load() == ks.gen {
			if err := c.store(ctx, s, tok); err != nil {
				ks.entryMu.Unlock()
				return err
			}
			ks.unstored.Store(false)
		}
		ks.entryMu.Unlock()
	}
	c.entries.CompareAndDelete(ks.key, ks)
	return nil
}

// evictKey stops caching a key no role names any more (see evict), and marks its stored
// token unnamed so that a restart does not bring it back into memory (status, metrics).
func (c *tokenCache) evictKey(ctx context.Context, s logical.Storage, key tokenKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries.Delete(key)
	return c.markUnnamed(ctx, s, key)
}

// markUnnamed marks the key's stored token unnamed; c.mu is held.
func (c *tokenCache) markUnnamed(ctx context.Context, s logical.Storage, key tokenKey) error {
	c.storing.wait() // a token still being stored would land unmarked
	stored, err := c.load(ctx, s, key)
	if err != nil || stored == nil || stored.Retired != "" || stored.Unnamed {
		return err
	}
	stored.Unnamed = true
	return c.store(ctx, s, stored)
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

// seed publishes a token fetched outside get (the SELF token that verified a new config),
// bounded by what is known of the key's token.
func (c *tokenCache) seed(ctx context.Context, s logical.Storage, tok *cachedToken) error {
	ks := c.state(tok.Key)
	if ks.fact.Load() == nil {
		if _, err := c.loadStored(ctx, s, ks, tok.Credentials); err != nil {
			c.logger.Warn("reading what is known of the token failed", "type", tok.Key.Type, "error", err)
		}
	}
	c.boundHandedBack(ks, tok)
	return c.publish(ctx, s, ks, tok, false)
}

// fresh reports whether the key holds a token of credentials (in memory or storage) that
// Naver would hand back: asking for it now would be a needless request.
func (c *tokenCache) fresh(ctx context.Context, s logical.Storage, key tokenKey, credentials string) bool {
	now := c.now()
	if v, ok := c.entries.Load(key); ok {
		if tok := v.(*keyState).token.Load(); tok.servable(credentials) {
			return tok.naverLife(now) >= refreshWindow
		}
	}
	tok, err := c.load(ctx, s, key)
	return err == nil && tok.servable(credentials) && tok.naverLife(now) >= refreshWindow
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
		c.storing.wait()
		c.generation.Add(1)
		c.entries.Clear()
	}
	c.credentials = credentials
}

// useSpread sets how far into Naver's window renewals spread (renewal_spread), within
// the cache's own cap (none in tests of the window's start).
func (c *tokenCache) useSpread(d time.Duration) {
	c.spread.Store(int64(min(d, c.spreadWidth)))
}

// credentialsID fingerprints what a token depends on, so a stored token from other
// credentials is recognised after a restart. It is a one-way hash: the secret cannot be
// recovered from it.
func credentialsID(clientID, secretPrefix, baseURL string) string {
	sum := sha256.Sum256([]byte("navercommerce-token-cache\x00" + clientID + "\x00" + secretPrefix + "\x00" + baseURL))
	return hex.EncodeToString(sum[:16])
}
