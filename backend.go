// Package navercommerce is a Vault secrets engine that hands out Naver Commerce API access
// tokens. The application's client secret stays in Vault; callers get only tokens, shared
// and cached so that Naver sees as few token requests as its rules allow.
package navercommerce

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// Version is the plugin's version, stamped at build time with
// -ldflags "-X github.com/navercommerce/vault-plugin-secrets-navercommerce.Version=v1.2.3".
// Vault compares it with the version a plugin is registered under.
var Version = "v0.1.0-dev"

const backendHelp = `
The Naver Commerce secrets engine issues access tokens for the Naver Commerce API.

Write the application's credentials to "config", define roles under "roles/" (SELF for the
application's own data, SELLER for a seller who authorised it), and read "token/<role>" for a
token (or "token/<role>/<account_id>" on a role that serves many sellers). Tokens are cached and shared by every role of the same account: Naver is asked only
when the cached token has less than 30 minutes left, and at most once at a time per account.
`

// backend is one mount of the secrets engine. All state lives here, not in package
// variables: a multiplexed plugin process serves many mounts.
type backend struct {
	*framework.Backend

	now       func() time.Time
	transport http.RoundTripper   // nil: the real network
	tlsConfig *tls.Config         // nil: the system's roots
	retryWait func(time.Duration) // nil: retries sleep their waits
	digest    SignatureDigest     // nil: bcrypt

	// current is the config and its client, loaded from storage on first use; nil until
	// then or after an invalidation. Reads take no lock; loadMu keeps loads single.
	current atomic.Pointer[configState]
	loadMu  sync.Mutex
	// configGen counts config writes, deletes and invalidations; a load publishes only if
	// none came since it read storage (publishMu makes the check and the store one step).
	configGen     atomic.Uint64
	publishMu     sync.Mutex
	configWriteMu sync.Mutex

	// roles caches, by name, the roles tokens are read through, so a warm read touches no
	// storage; rolesMu orders cache fills against role writes.
	roles   sync.Map
	rolesMu sync.Mutex
	// roleLocks serialise writes and deletes of one role; roleChecksMu holds them off (read
	// side) while every role is loaded into the core (write side).
	roleLocks    []*locksutil.LockEntry
	roleChecksMu sync.RWMutex
	// staleRoles are the roles another node changed that the core has not been told of.
	staleRoles sync.Map
	// unreadable lists the stored roles this version cannot read, for status.
	unreadable unreadableRoles
	tokens     *tokenCache
	metrics    *metrics
}

// backendOptions are what tests inject; zero values mean production behaviour.
type backendOptions struct {
	now       func() time.Time
	transport http.RoundTripper
	// tlsConfig is used by the real network transport (with proxy_url or HTTPS_PROXY), so
	// a test can trust an HTTPS emulator without replacing the transport.
	tlsConfig *tls.Config
	// renewAtWindowStart renews every token as soon as Naver's window opens, without the
	// per-key spread: for tests of the window's start.
	renewAtWindowStart bool
	// retryWait, when set, is handed the waits between retries instead of sleeping them.
	retryWait func(time.Duration)
	// digest, when set, replaces bcrypt in signatures (Options.SignatureDigest).
	digest SignatureDigest
	// storeAtOnce: Options.StoreNewTokensAtOnce.
	storeAtOnce bool
}

// Factory creates a mount of the secrets engine; Vault calls it once per mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(backendOptions{})
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend(opts backendOptions) *backend {
	b := &backend{now: opts.now, transport: opts.transport, tlsConfig: opts.tlsConfig, retryWait: opts.retryWait, digest: opts.digest, roleLocks: locksutil.CreateLocks()}
	if b.now == nil {
		b.now = time.Now
	}
	b.Backend = &framework.Backend{
		Help:           strings.TrimSpace(backendHelp),
		BackendType:    logical.TypeLogical,
		RunningVersion: Version,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{configStorageKey},
			// Each cluster keeps its own token cache: a performance secondary cannot write
			// to replicated storage, and Naver hands every cluster the same token anyway.
			LocalStorage: []string{tokenStoragePrefix},
		},
		Paths: framework.PathAppend(
			[]*framework.Path{pathConfig(b)},
			pathRoles(b),
			[]*framework.Path{pathToken(b), pathSellerToken(b), pathInfo(b)},
			pathStatus(b),
			[]*framework.Path{pathMetrics(b)},
		),
		Secrets:      []*framework.Secret{secretToken(b)},
		Invalidate:   b.invalidate,
		PeriodicFunc: b.periodic,
		// An unmount or reload stops requests to Naver in flight and background renewals.
		Clean: func(context.Context) { b.tokens.close() },
	}
	rejectUnknownFieldsEverywhere(b.Backend.Paths)
	checkRoleNamesEverywhere(b.Backend.Paths)
	b.metrics = newMetrics()
	b.tokens = newTokenCache(b.now, nil, core.Options{RenewAtWindowStart: opts.renewAtWindowStart})
	if opts.storeAtOnce {
		b.tokens.leaseFirst = 0
	}
	b.tokens.metrics = b.metrics
	return b
}

// Setup also hands the token cache the logger, which exists only once Vault configured us,
// and keeps the per-request replication-state round trip off the hot path.
func (b *backend) Setup(ctx context.Context, conf *logical.BackendConfig) error {
	if conf.System != nil {
		sys := *conf
		sys.System = &cachedReplicationState{SystemView: conf.System, now: time.Now}
		conf = &sys
	}
	if err := b.Backend.Setup(ctx, conf); err != nil {
		return err
	}
	b.tokens.logger = b.Logger().Named("tokens")
	return nil
}

// invalidate drops in-memory state derived from a storage key another node changed.
func (b *backend) invalidate(ctx context.Context, key string) {
	switch {
	case key == configStorageKey:
		// The next use loads the new config; if its credentials differ, the core drops
		// memory then (the node that changed them purged storage). Unchanged credentials
		// keep what is cached and in flight: dropping it would cost a needless request.
		b.forgetConfig()
	case strings.HasPrefix(key, roleStoragePrefix):
		name := strings.TrimPrefix(key, roleStoragePrefix)
		b.rolesMu.Lock()
		b.roles.Delete(name)
		b.rolesMu.Unlock()
		b.unreadable.forget(name) // what another node wrote is judged when next read
		// The core learns the role as storage now holds it.
		b.refreshRole(name)
	case strings.HasPrefix(key, tokenStoragePrefix):
		b.tokens.step(nil, core.EntryChanged{Now: b.now(), StorageKey: key})
	}
}

// noContent declares the 204 answer of a write or delete.
func noContent(description string) map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusNoContent: {{Description: description}}}
}

// rejectUnknownFieldsEverywhere wraps every operation of paths so that a request naming a
// field its path does not declare is refused (400, naming the field) before the handler
// runs: no handler can forget the check.
func rejectUnknownFieldsEverywhere(paths []*framework.Path) {
	for _, p := range paths {
		for _, op := range p.Operations {
			po, ok := op.(*framework.PathOperation)
			if !ok || po.Callback == nil {
				continue
			}
			next := po.Callback
			po.Callback = func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				if err := rejectUnknownFields(d); err != nil {
					return logical.ErrorResponse(err.Error()), nil
				}
				return next(ctx, req, d)
			}
		}
	}
}

// HandleExistenceCheck first checks the values the request gives for the path's fields: the
// framework's existence check converts them before any handler runs and refuses a bad one
// with "error converting input for field "lease": cannot parse ... as bool", which says
// neither what was wrong nor what the field takes.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	if p := b.Route(req.Path); p != nil && p.ExistenceCheck != nil {
		d := &framework.FieldData{Raw: req.Data, Schema: p.Fields}
		names := make([]string, 0, len(req.Data))
		for name := range req.Data {
			if _, known := p.Fields[name]; known { // unknown ones are refused by the handler's wrapper
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			if _, _, err := d.GetOkErr(name); err != nil {
				return false, false, errutil.UserError{Err: fieldValueError(d, name).Error()}
			}
		}
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// checkRoleNamesEverywhere wraps every operation (and existence check) of the paths that
// take a role name so that a name outside roleNameRule is refused with a 400 saying which
// names are allowed. Those paths capture any name (roleNamePattern): with the framework's
// name pattern, "roles/bad_name!" would be a bare 404 "unsupported path".
func checkRoleNamesEverywhere(paths []*framework.Path) {
	for _, p := range paths {
		if _, ok := p.Fields[fieldRoleName]; !ok {
			continue
		}
		for _, op := range p.Operations {
			po, ok := op.(*framework.PathOperation)
			if !ok || po.Callback == nil {
				continue
			}
			next := po.Callback
			po.Callback = func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				if err := checkRoleName(d.Get(fieldRoleName).(string)); err != nil {
					return logical.ErrorResponse(err.Error()), nil
				}
				return next(ctx, req, d)
			}
		}
		if next := p.ExistenceCheck; next != nil {
			// A bad name does not exist; the operation that follows refuses it.
			p.ExistenceCheck = func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
				if checkRoleName(d.Get(fieldRoleName).(string)) != nil {
					return false, nil
				}
				return next(ctx, req, d)
			}
		}
	}
}

// rejectUnknownFields makes a typo in a field name an error instead of a silent no-op.
func rejectUnknownFields(d *framework.FieldData) error {
	var unknown []string
	for k := range d.Raw {
		if _, ok := d.Schema[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(d.Schema))
	for k := range d.Schema {
		known = append(known, k)
	}
	sort.Strings(known)
	return fmt.Errorf("unknown field(s) %s; this path takes %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
}

// fieldValueError is the error for a value of field name that does not parse as the field's
// type. The framework's own message ("cannot parse ... as bool") names neither the field nor
// what it accepts. It quotes the value of a bool, int or duration field only.
func fieldValueError(d *framework.FieldData, name string) error {
	var accepts string
	switch d.Schema[name].Type {
	case framework.TypeBool:
		accepts = "true or false"
	case framework.TypeDurationSecond:
		accepts = `a duration such as "90s", "10m" or "3h", or a whole number of seconds`
	case framework.TypeInt:
		accepts = "a whole number"
	default:
		// A string field's value may hold a secret (proxy_url's password): not quoted.
		return fmt.Errorf("%s: must be a string", name)
	}
	value := fmt.Sprint(d.Raw[name])
	if len(value) > 40 {
		value = value[:40] + "..."
	}
	return fmt.Errorf("%s: %q is not valid; it takes %s", name, value, accepts)
}
