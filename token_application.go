package navercommerce

// What the whole application asked of Naver, as storage keeps it: Naver judges (and
// penalises) the application, not the key, so its request counts per minute are kept in
// storage across restarts and crash loops (what they allow is decided in internal/core).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

const appStoragePrefix = "applications/"

// appStorageKey names the entry of an application's counts without its client ID in a path.
func appStorageKey(clientID string) string {
	sum := sha256.Sum256([]byte(clientID))
	return appStoragePrefix + hex.EncodeToString(sum[:16])
}

// loadCounts reads the application's stored counts for the core.
func loadCounts(ctx context.Context, s logical.Storage, clientID string, now func() time.Time) core.CountsLoaded {
	ev := core.CountsLoaded{ClientID: clientID}
	entry, err := s.Get(ctx, appStorageKey(clientID))
	ev.Now = now()
	switch {
	case err != nil:
		ev.Err = err
	case entry != nil:
		var counts core.Counts
		if err := entry.DecodeJSON(&counts); err != nil {
			ev.Lost = true
		} else {
			ev.Counts = &counts
		}
	}
	return ev
}

// storeCounts writes the application's counts.
func storeCounts(ctx context.Context, s logical.Storage, clientID string, counts core.Counts) error {
	entry, err := logical.StorageEntryJSON(appStorageKey(clientID), &counts)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing the application's request counts: %w", err)
	}
	return nil
}
