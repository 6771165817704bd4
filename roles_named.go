package navercommerce

// Which roles name a token's key is the decision core's to tell: it keeps every role (what
// each names, and what its reads ask), so that a key no role names stops being cached in one
// place, whichever entry point made it so. This file keeps the core told: every stored role
// is loaded after a start and at each hourly scan, and every role write, delete and
// invalidation is handed to it.

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// core is what the decision core needs of the role (nil: none).
func (r *roleEntry) core() *core.Role {
	if r == nil {
		return nil
	}
	return &core.Role{Type: r.Type, AccountID: r.AccountID, Allowed: r.AllowedAccountIDs, MinLife: r.MinRemainingTTL, NewAccountsPerHour: r.MaxNewAccountsPerHour}
}

// newAccountsPerHour is the bound of a many-seller role on accounts without a token from
// Naver that it may ask for in an hour.
func (r *roleEntry) newAccountsPerHour() int {
	if r.MaxNewAccountsPerHour > 0 {
		return r.MaxNewAccountsPerHour
	}
	return core.DefaultNewAccountsPerHour
}

// loadRoles reads every stored role and hands them to the core, noting those that cannot be
// read (they name nothing). No role write lands meanwhile.
func (b *backend) loadRoles(ctx context.Context, s logical.Storage) error {
	b.roleChecksMu.Lock()
	defer b.roleChecksMu.Unlock()
	names, err := s.List(ctx, roleStoragePrefix)
	if err != nil {
		return fmt.Errorf("listing roles: %w", err)
	}
	roles := make(map[string]core.Role, len(names))
	for _, name := range names {
		r, err := b.readRole(ctx, s, name)
		if isUnreadableRole(err) {
			b.Logger().Warn("skipping a role that cannot be read: it names no token until it is replaced or deleted", "role", name, "error", err)
			continue
		}
		if err != nil {
			return err
		}
		if r != nil {
			roles[name] = *r.core()
		}
	}
	b.tokens.step(s, core.RolesLoaded{Now: b.now(), Roles: roles})
	b.unreadable.mu.Lock()
	b.unreadable.scannedAt = b.now()
	b.unreadable.mu.Unlock()
	// Roles another node changed while they were read: read again, after.
	b.refreshStaleRoles(ctx, s)
	return nil
}

// ensureRoles loads every role into the core unless it knows them already.
func (b *backend) ensureRoles(ctx context.Context, s logical.Storage) error {
	if b.tokens.rolesKnown() {
		return nil
	}
	return b.loadRoles(ctx, s)
}

// refreshRole hands the core what another node made of role name (an invalidation), at once
// unless every role is being read (that load reads it again when it is done).
func (b *backend) refreshRole(name string) {
	b.staleRoles.Store(name, struct{}{})
	s := b.tokens.storageHandle()
	if s == nil {
		return // nothing read yet: the roles are loaded when first needed
	}
	if !b.roleChecksMu.TryRLock() {
		return
	}
	defer b.roleChecksMu.RUnlock()
	b.refreshStaleRoles(b.tokens.ctx, s)
}

// refreshStaleRoles reads again the roles another node changed and hands them to the core;
// roleChecksMu is held.
func (b *backend) refreshStaleRoles(ctx context.Context, s logical.Storage) {
	b.staleRoles.Range(func(k, _ any) bool {
		name := k.(string)
		b.staleRoles.Delete(name)
		r, err := b.readRole(ctx, s, name)
		if err != nil && !isUnreadableRole(err) {
			// Stays stale: the next periodic run reads it again (and the hourly scan every role).
			b.staleRoles.Store(name, struct{}{})
			b.Logger().Warn("reading a role another node changed failed; the next periodic run reads it again", "role", name, "error", err)
			return false
		}
		b.tokens.setRole(s, name, r)
		return true
	})
}
