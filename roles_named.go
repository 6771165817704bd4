package navercommerce

// Which roles name a token's key: a token no role names stops being cached and renewed.
// The cache keeps, per key, the roles known to read it as hints; a role write or delete
// checks the keys it touched against one snapshot of the stored roles (see
// docs/decisions.md, "cached-keys-named").

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// evictUnnamed stops caching, before a role write or delete returns, the keys it left no role
// naming (see tokenCache.checkMarked); without a config there is nothing cached to check.
func (b *backend) evictUnnamed(ctx context.Context, s logical.Storage) {
	st, err := b.getConfig(ctx, s)
	if err != nil || st == nil {
		return
	}
	b.tokens.checkMarked(ctx, s, b.keyNamed(st.config.ClientID))
}

// dropOrphanedToken stops caching (and renewing) the token of old's key when no
// role names that key any more (old was deleted or now names another). Only roles read since
// the plugin started are known to the cache, so every role is checked, and the token is
// marked unnamed at once even if it is only in storage. A many-seller role's keys are checked
// by evictUnnamed (those in memory; stored ones are checked when a start loads them).
func (b *backend) dropOrphanedToken(ctx context.Context, s logical.Storage, old *roleEntry) {
	if old == nil || old.manySellers() {
		return
	}
	st, err := b.getConfig(ctx, s)
	if err != nil || st == nil {
		return
	}
	key := old.tokenKey(st.config.ClientID)
	// No role write lands between the check and the eviction.
	b.roleChecksMu.Lock()
	defer b.roleChecksMu.Unlock()
	naming, err := b.keyNamedLocked(ctx, s, st.config.ClientID, key, nil, nil)
	if err != nil {
		b.Logger().Warn("checking whether a role still names the token failed; the periodic run evicts it", "type", key.Type, "error", err)
		return
	}
	if len(naming) == 0 {
		if err := b.tokens.evictKey(ctx, s, key); err != nil {
			b.Logger().Warn("marking the token no role names failed", "type", key.Type, "error", err)
		}
	}
}

// keyNamed reports which roles still name key: of the roles known to read it (hints),
// those that do, or, only if none of those does, the first of every role that does. Role
// writes and deletes wait while it runs. A role that cannot be read names nothing (no token
// can be read through it): it is skipped with a warning, and never fails the check.
//
// The returned function is one periodic run's: it reads every role from storage once, not
// once per key (after a start or a many-seller role's change, every key of thousands of
// sellers is checked), and again after any role write, delete or invalidation.
func (b *backend) keyNamed(clientID string) keyNamedFunc {
	var all roleSnapshot
	return func(ctx context.Context, s logical.Storage, key tokenKey, hints []string) ([]string, error) {
		b.roleChecksMu.Lock()
		defer b.roleChecksMu.Unlock()
		return b.keyNamedLocked(ctx, s, clientID, key, hints, &all)
	}
}

// hintedRole is a role a key's hints name: from memory if a read loaded it, else from the
// snapshot of every role. Not from storage: a deleted role is never in memory, and after a
// many-seller role's delete it is asked for once per seller (5,000 storage reads at 5,000
// sellers, before the delete returns).
func (b *backend) hintedRole(ctx context.Context, s logical.Storage, name string, all *roleSnapshot) (*roleEntry, error) {
	if v, ok := b.roles.Load(name); ok {
		return v.(*roleEntry), nil
	}
	if err := all.load(ctx, b, s); err != nil {
		return nil, err
	}
	return all.lookup(name), nil
}

// roleSnapshot is every stored role as read at one count of role changes.
type roleSnapshot struct {
	changes uint64
	read    bool
	names   []string
	roles   []*roleEntry // nil where the role could not be read
	index   map[string]int
}

// lookup is the named role as read (nil: none, or unreadable).
func (a *roleSnapshot) lookup(name string) *roleEntry {
	if i, ok := a.index[name]; ok {
		return a.roles[i]
	}
	return nil
}

// load reads every role unless the snapshot is of the current count of role changes;
// roleChecksMu is held, so no role write is under way.
func (a *roleSnapshot) load(ctx context.Context, b *backend, s logical.Storage) error {
	changes := b.tokens.roleChanges.Load()
	if a.read && a.changes == changes {
		return nil
	}
	names, err := s.List(ctx, roleStoragePrefix)
	if err != nil {
		return fmt.Errorf("listing roles: %w", err)
	}
	roles := make([]*roleEntry, len(names))
	index := make(map[string]int, len(names))
	for i, name := range names {
		index[name] = i
		r, err := b.readRole(ctx, s, name)
		if isUnreadableRole(err) {
			b.Logger().Warn("skipping a role that cannot be read while checking which roles name a token", "role", name, "error", err)
			continue
		}
		if err != nil {
			return err
		}
		roles[i] = r
	}
	*a = roleSnapshot{changes: changes, read: true, names: names, roles: roles, index: index}
	return nil
}

// keyNamedLocked is keyNamed under roleChecksMu; all may be nil (read every role afresh).
func (b *backend) keyNamedLocked(ctx context.Context, s logical.Storage, clientID string, key tokenKey, hints []string, all *roleSnapshot) ([]string, error) {
	if all == nil {
		all = new(roleSnapshot)
	}
	var naming []string
	for _, name := range hints {
		r, err := b.hintedRole(ctx, s, name, all)
		if isUnreadableRole(err) {
			b.Logger().Warn("skipping a role that cannot be read while checking which roles name a token", "role", name, "error", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		if r != nil && r.names(clientID, key) {
			naming = append(naming, name)
		}
	}
	if len(naming) > 0 {
		return naming, nil
	}
	if err := all.load(ctx, b, s); err != nil {
		return nil, err
	}
	for i, r := range all.roles {
		if r != nil && r.names(clientID, key) {
			return []string{all.names[i]}, nil
		}
	}
	return nil, nil
}
