package navercommerce

import (
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// Storage formats. Every stored entry carries the format it was written in ("format"; absent
// from entries written before formats existed, which are format 0) and is upgraded when
// read, so that a plugin upgrade never strands what an older version stored, and a
// downgrade refuses what it cannot read instead of misreading it.
const (
	configFormat = 1
	// roleFormat 2 is written only for many-seller roles (allowed_account_ids); other
	// roles are still written in format 1 (see roleEntry.storageFormat).
	roleFormat  = 2
	tokenFormat = 1
)

// upgradable is a stored entry that brings itself to the current format after decoding.
type upgradable interface {
	upgrade() error
}

// decodeEntry decodes entry into v and upgrades it; what names the entry in errors.
func decodeEntry(entry *logical.StorageEntry, what string, v upgradable) error {
	if err := entry.DecodeJSON(v); err != nil {
		return fmt.Errorf("decoding %s: %w", what, err)
	}
	if err := v.upgrade(); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return nil
}

// newerFormatError is an entry stored by a newer version of the plugin, in a format this one
// cannot read: it is refused, never misread, and never deleted (a rollback must not lose
// what the newer version knows).
type newerFormatError struct{ format, current int }

func (e *newerFormatError) Error() string {
	return fmt.Sprintf("stored in format %d by a newer version of the plugin; this version reads formats up to %d: upgrade the plugin", e.format, e.current)
}

func isNewerFormat(err error) bool {
	var nf *newerFormatError
	return errors.As(err, &nf)
}

// Format 0 → 1 (config): max_token_requests_per_hour did not exist; absent means the default.
func (c *naverConfig) upgrade() error {
	if c.Format > configFormat {
		return &newerFormatError{c.Format, configFormat}
	}
	c.Format = configFormat
	return nil
}

// Format 0 → 1 (role): lease did not exist; absent (no_lease false) means leased.
// Format 1 → 2 (role): allowed_account_ids did not exist; absent means a single-account role.
func (r *roleEntry) upgrade() error {
	if r.Format > roleFormat {
		return &newerFormatError{r.Format, roleFormat}
	}
	r.Format = roleFormat
	return nil
}

// Format 0 → 1 (cached token): latest_expiry did not exist; absent means expires_at (see
// naverLife), which can only make the cache ask Naver early, never serve a dead token.
func (t *storedToken) upgrade() error {
	if t.Format > tokenFormat {
		return &newerFormatError{t.Format, tokenFormat}
	}
	t.Format = tokenFormat
	return nil
}
