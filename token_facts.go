package navercommerce

// What we know about tokens, as storage keeps it: a key, a cached token or the fact of one
// no longer served, and how they are written and read. What is decided about them lives in
// internal/core.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// tokenKey identifies a token at Naver: roles naming the same account share it.
type tokenKey = core.Key

// cachedToken is a token with what the cache needs to know about it, or the fact of one
// no longer served; also the stored form of a key's entry (see core.Token).
type cachedToken = core.Token

const (
	tokenStoragePrefix = core.TokenPrefix

	// Why a token is no longer served (cachedToken.Retired).
	retiredDropped     = core.RetiredDropped
	retiredUnusable    = core.RetiredUnusable
	retiredCredentials = core.RetiredCredentials

	refreshWindow    = core.RefreshWindow
	renewSpreadWidth = core.RenewSpreadWidth
	minServableLife  = core.MinServableLife
	tokenLifetime    = core.TokenLifetime
)

// tokenFingerprint is a one-way digest of a token (see core.Fingerprint).
func tokenFingerprint(token string) string { return core.Fingerprint(token) }

// renewSpread is the key's stable offset into Naver's window, from 0 to width.
func renewSpread(k tokenKey, width time.Duration) time.Duration {
	return core.SpreadOffset(k.SpreadHash(), width)
}

// storeToken writes tok as its key's entry, in the current format.
func storeToken(ctx context.Context, s logical.Storage, tok *cachedToken) error {
	stored := *tok
	stored.Format = tokenFormat
	entry, err := logical.StorageEntryJSON(tok.Key.StorageKey(), &stored)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

// loadToken reads the key's entry (nil: none, or one of another key).
func loadToken(ctx context.Context, s logical.Storage, key tokenKey) (*cachedToken, error) {
	entry, err := s.Get(ctx, key.StorageKey())
	if err != nil || entry == nil {
		return nil, err
	}
	tok, err := decodeToken(entry)
	if err != nil {
		return nil, err
	}
	if tok.Key != key {
		return nil, nil
	}
	return tok, nil
}

func decodeToken(entry *logical.StorageEntry) (*cachedToken, error) {
	var tok storedToken
	if err := decodeEntry(entry, "cached token", &tok); err != nil {
		return nil, err
	}
	t := cachedToken(tok)
	return &t, nil
}

// storedToken is a token entry as decoded, which brings itself to the current format.
type storedToken core.Token

// credentialsID fingerprints what a token depends on, so a stored token from other
// credentials is recognised after a restart. It is a one-way hash: the secret cannot be
// recovered from it.
func credentialsID(clientID, secretPrefix, baseURL string) string {
	sum := sha256.Sum256([]byte("navercommerce-token-cache\x00" + clientID + "\x00" + secretPrefix + "\x00" + baseURL))
	return hex.EncodeToString(sum[:16])
}
