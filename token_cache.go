package navercommerce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/singleflight"
)

const (
	// refreshWindow mirrors Naver's rule: a token with this much life left is handed back
	// unchanged by Naver, so asking earlier buys nothing; with less left Naver issues a new one.
	refreshWindow = 30 * time.Minute
	// minRefetchInterval stops a key from asking Naver again and again when Naver's clock and
	// ours disagree about the 30 minutes (Naver would hand back the same token): while the
	// cached token is still good, a key asks at most this often.
	minRefetchInterval = 10 * time.Second
	// minServableLife is the least life a token must have to be handed out at all.
	minServableLife = 10 * time.Second
	// minAheadLife: with background refresh on, a token in the 30-minute window that has at
	// least this much left is served at once while a new one is requested behind the read.
	minAheadLife = 5 * time.Minute

	tokenStoragePrefix = "tokens/"
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
	accessToken
	Key tokenKey `json:"key"`
	// Credentials ties the token to the config it was fetched with (see credentialsID).
	Credentials string `json:"credentials"`
	// FetchedAt is when the token was requested.
	FetchedAt time.Time `json:"fetched_at"`
	// lastRead (Unix nanoseconds) tells background refresh whether anyone uses the token.
	lastRead atomic.Int64
}

// markRead records a read at now, writing only when the second changes: every read of a
// warm key goes through here, and a shared cache line should stay shared.
func (t *cachedToken) markRead(now time.Time) {
	n := now.UnixNano()
	if n-t.lastRead.Load() > int64(time.Second) {
		t.lastRead.Store(n)
	}
}

// readSinceFetched reports whether anyone read the token after it was fetched.
func (t *cachedToken) readSinceFetched() bool {
	return t.lastRead.Load() >= t.FetchedAt.UnixNano()
}

// fetchFunc asks Naver for the key's token.
type fetchFunc func(ctx context.Context, key tokenKey) (accessToken, error)

// tokenCache holds one token per key in memory, backed by Vault storage so a restart or a
// leader change does not set off a burst of requests, and lets at most one request per key
// reach Naver at a time.
type tokenCache struct {
	now    func() time.Time
	logger hclog.Logger

	// entries maps tokenKey → *cachedToken; the warm path is one lookup with no lock.
	entries sync.Map
	flights singleflight.Group
	// backoffs maps tokenKey → backoff after a failed request.
	backoffs sync.Map
	// generation changes whenever the credentials do, so results of requests made with old
	// credentials are never published.
	generation atomic.Uint64
	// mu orders publishing (read lock) against purging (write lock).
	mu sync.RWMutex
}

func newTokenCache(now func() time.Time, logger hclog.Logger) *tokenCache {
	return &tokenCache{now: now, logger: logger}
}

// fresh reports whether tok can be served without asking Naver.
func (c *tokenCache) fresh(tok *cachedToken, credentials string, now time.Time) bool {
	return tok != nil && tok.Credentials == credentials && tok.ExpiresAt.Sub(now) >= refreshWindow
}

// tokenResult is what one flight hands to every caller waiting on it.
type tokenResult struct {
	token *cachedToken
	// warning is set when Naver failed but the cached token still had life to serve.
	warning string
}

// get returns the key's token, asking Naver through fetch only when the cached one has
// less than refreshWindow left. Concurrent callers for one key share one request and its
// result or error. credentials identifies the current config (see credentialsID). With
// ahead, a token in the window with minAheadLife left is served at once and renewed behind
// the read.
func (c *tokenCache) get(ctx context.Context, s logical.Storage, key tokenKey, credentials string, ahead bool, fetch fetchFunc) (tokenResult, error) {
	now := c.now()
	if v, ok := c.entries.Load(key); ok && v.(*cachedToken).Credentials == credentials {
		tok := v.(*cachedToken)
		left := tok.ExpiresAt.Sub(now)
		if left >= refreshWindow {
			tok.markRead(now)
			return tokenResult{token: tok}, nil
		}
		if ahead && left >= minAheadLife {
			tok.markRead(now)
			// DoChan starts the flight (or joins the running one) without waiting for it.
			c.flights.DoChan(c.flightKey(key), c.refresher(ctx, s, key, credentials, fetch))
			return tokenResult{token: tok}, nil
		}
	}
	v, err, _ := c.flights.Do(c.flightKey(key), c.refresher(ctx, s, key, credentials, fetch))
	if err != nil {
		return tokenResult{}, err
	}
	res := v.(tokenResult)
	res.token.markRead(c.now())
	return res, nil
}

// flightKey includes the generation so no caller joins a request made with old credentials.
func (c *tokenCache) flightKey(key tokenKey) string {
	return strconv.FormatUint(c.generation.Load(), 10) + "|" + key.String()
}

func (c *tokenCache) refresher(ctx context.Context, s logical.Storage, key tokenKey, credentials string, fetch fetchFunc) func() (any, error) {
	gen := c.generation.Load()
	return func() (any, error) {
		// The flight outlives the caller that started it: the others wait on it too.
		return c.refresh(context.WithoutCancel(ctx), s, key, credentials, gen, fetch)
	}
}

// renewReadTokens renews, one key at a time, every token in the 30-minute window that was
// read since it was fetched. Tokens nobody reads are left to expire: no wasted requests.
func (c *tokenCache) renewReadTokens(ctx context.Context, s logical.Storage, credentials string, fetch fetchFunc) (renewed int) {
	now := c.now()
	var due []tokenKey
	c.entries.Range(func(k, v any) bool {
		tok := v.(*cachedToken)
		if tok.Credentials == credentials && tok.ExpiresAt.Sub(now) < refreshWindow && tok.readSinceFetched() {
			due = append(due, k.(tokenKey))
		}
		return true
	})
	for _, key := range due {
		if ctx.Err() != nil {
			break
		}
		if _, err, _ := c.flights.Do(c.flightKey(key), c.refresher(ctx, s, key, credentials, fetch)); err != nil {
			c.logger.Warn("background refresh failed", "type", key.Type, "error", err)
			continue
		}
		renewed++
	}
	return renewed
}

// refresh runs once per key at a time.
func (c *tokenCache) refresh(ctx context.Context, s logical.Storage, key tokenKey, credentials string, gen uint64, fetch fetchFunc) (tokenResult, error) {
	now := c.now()
	var current *cachedToken
	if v, ok := c.entries.Load(key); ok && v.(*cachedToken).Credentials == credentials {
		current = v.(*cachedToken)
	} else if stored, err := c.load(ctx, s, key); err != nil {
		c.logger.Warn("reading cached token from storage failed; asking Naver", "type", key.Type, "error", err)
	} else if stored != nil && stored.Credentials == credentials && stored.ExpiresAt.After(now) {
		current = stored
		c.entries.Store(key, stored)
	}
	if c.fresh(current, credentials, now) {
		return tokenResult{token: current}, nil
	}
	servable := current != nil && current.ExpiresAt.Sub(now) >= minServableLife
	if servable && now.Sub(current.FetchedAt) < minRefetchInterval {
		return tokenResult{token: current}, nil
	}
	if b, ok := c.backoffs.Load(key); ok && now.Before(b.(backoff).until) {
		// Naver just failed for this key: do not ask again before it may succeed.
		if servable {
			return tokenResult{token: current, warning: b.(backoff).warning()}, nil
		}
		return tokenResult{}, b.(backoff).err
	}

	tok, err := fetch(ctx, key)
	if err != nil {
		b := newBackoff(err, c.now())
		c.backoffs.Store(key, b)
		if servable {
			c.logger.Warn("renewing token failed; serving the cached one until it expires", "type", key.Type, "expires_at", current.ExpiresAt, "error", err)
			return tokenResult{token: current, warning: b.warning()}, nil
		}
		return tokenResult{}, err
	}
	c.backoffs.Delete(key)
	fetched := &cachedToken{accessToken: tok, Key: key, Credentials: credentials, FetchedAt: now}
	if left := fetched.ExpiresAt.Sub(c.now()); left < minServableLife {
		return tokenResult{}, fmt.Errorf("naver issued a token with only %s left", left.Round(time.Second))
	}
	if err := c.publish(ctx, s, gen, fetched); err != nil {
		// The token is good; only the copy for restarts is missing.
		c.logger.Warn("storing token failed; it is cached in memory only", "type", key.Type, "error", err)
	}
	return tokenResult{token: fetched}, nil
}

// backoff remembers a failed request so that reads in the next moments share its error
// instead of each asking Naver again: Naver penalises applications that ask too often.
type backoff struct {
	err   error
	until time.Time
}

const (
	failureBackoff   = 5 * time.Second
	rateLimitBackoff = 30 * time.Second
	maxBackoff       = 5 * time.Minute
)

func newBackoff(err error, now time.Time) backoff {
	wait := failureBackoff
	var ue *upstreamError
	if errors.As(err, &ue) {
		switch {
		case ue.RetryAfter > 0:
			wait = min(ue.RetryAfter, maxBackoff)
		case ue.StatusCode == http.StatusTooManyRequests:
			wait = rateLimitBackoff
		}
	}
	return backoff{err: err, until: now.Add(wait)}
}

func (b backoff) warning() string {
	return fmt.Sprintf("renewing this token failed (%v); serving the cached token until it expires", b.err)
}

// publish makes tok the key's token in memory and storage, unless the credentials changed
// while it was being fetched.
func (c *tokenCache) publish(ctx context.Context, s logical.Storage, gen uint64, tok *cachedToken) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.generation.Load() != gen {
		return nil
	}
	c.entries.Store(tok.Key, tok)
	entry, err := logical.StorageEntryJSON(tok.Key.storageKey(), tok)
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
	if err := entry.DecodeJSON(&tok); err != nil {
		return nil, fmt.Errorf("decoding cached token: %w", err)
	}
	if tok.Key != key {
		return nil, nil
	}
	return &tok, nil
}

// purge forgets every token, in memory and (when s is not nil) in storage: the credentials
// changed, and a token of other credentials must never be served.
func (c *tokenCache) purge(ctx context.Context, s logical.Storage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation.Add(1)
	c.entries.Clear()
	c.backoffs.Clear()
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

// forget drops the in-memory copy of the token stored under storageKey (another node wrote it).
func (c *tokenCache) forget(storageKey string) {
	c.entries.Range(func(k, _ any) bool {
		if k.(tokenKey).storageKey() == storageKey {
			c.entries.Delete(k)
			return false
		}
		return true
	})
}

// seed publishes a token fetched outside get (the SELF token that verified a new config).
func (c *tokenCache) seed(ctx context.Context, s logical.Storage, tok *cachedToken) error {
	return c.publish(ctx, s, c.generation.Load(), tok)
}

// credentialsID fingerprints what a token depends on, so a stored token from other
// credentials is recognised after a restart. It is a one-way hash: the secret cannot be
// recovered from it.
func credentialsID(clientID, secretPrefix, baseURL string) string {
	sum := sha256.Sum256([]byte("navercommerce-token-cache\x00" + clientID + "\x00" + secretPrefix + "\x00" + baseURL))
	return hex.EncodeToString(sum[:16])
}
