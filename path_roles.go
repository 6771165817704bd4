package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	roleStoragePrefix = "roles/"

	fieldRoleName  = "name"
	fieldType      = "type"
	fieldAccountID = "account_id"
	fieldTTL       = "ttl"
	fieldLease     = "lease"
	// fieldMinRemainingTTL: the least life a token read through the role may have.
	fieldMinRemainingTTL = "min_remaining_ttl"

	maxAccountIDLength = 128

	// maxMinRemainingTTL bounds min_remaining_ttl: a token with 30 minutes or more left is the
	// one Naver hands back, so no read can be given more than that; the minute kept back is
	// the longest a request to Naver may take (request_timeout), by which a served token's
	// life can trail Naver's view of it.
	maxMinRemainingTTL = refreshWindow - time.Minute
)

// roleEntry is a stored role: which kind of token it reads.
type roleEntry struct {
	Format    int           `json:"format,omitempty"` // see storage_format.go
	Type      string        `json:"type"`
	AccountID string        `json:"account_id,omitempty"`
	TTL       time.Duration `json:"ttl"`
	// NoLease is stored negated so roles written before the field existed keep leases.
	NoLease bool `json:"no_lease,omitempty"`
	// MinRemainingTTL: a read never returns a token with less life left (0: minServableLife).
	MinRemainingTTL time.Duration `json:"min_remaining_ttl,omitempty"`
}

// minLife is the least life a token read through the role must have.
func (r *roleEntry) minLife() time.Duration { return max(r.MinRemainingTTL, minServableLife) }

func (r *roleEntry) tokenKey(clientID string) tokenKey {
	return tokenKey{ClientID: clientID, Type: r.Type, AccountID: r.AccountID}
}

func pathRoles(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: b.pathRolesList,
					Summary:  "List the roles.",
					Responses: map[int][]framework.Response{
						200: {{Description: "OK", Fields: map[string]*framework.FieldSchema{
							"keys": {Type: framework.TypeStringSlice, Description: "Role names."},
						}}},
					},
				},
			},
			HelpSynopsis:    "List the roles.",
			HelpDescription: "Lists the names of the roles defined on this mount.",
		},
		{
			Pattern: "roles/" + framework.GenericNameRegex(fieldRoleName),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "role",
			},
			Fields: map[string]*framework.FieldSchema{
				fieldRoleName: {
					Type:        framework.TypeString,
					Description: "Name of the role.",
					Required:    true,
				},
				fieldType: {
					Type:        framework.TypeString,
					Description: `Token type: "SELF" (the application's own data) or "SELLER" (a seller who authorised the application). Case-insensitive. Required on create.`,
					AllowedValues: []any{
						tokenTypeSelf, tokenTypeSeller,
					},
				},
				fieldAccountID: {
					Type:        framework.TypeString,
					Description: "The seller's account ID or UID (e.g. ncp_...). Required for SELLER, not allowed for SELF: Naver penalises SELF requests that carry one.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Account ID",
					},
				},
				fieldTTL: {
					Type:        framework.TypeDurationSecond,
					Description: "Upper bound of the lease on tokens read through this role. 0 (default): the token's remaining life.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "TTL",
					},
				},
				fieldMinRemainingTTL: {
					Type:        framework.TypeDurationSecond,
					Description: "A read never returns a token with less life left than this: a token with less is renewed first, and if renewing fails the read fails. For consumers that ignore leases and re-read on a timer (set it above their re-read interval). 0 (default): 10 seconds. At most 29m.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Minimum remaining TTL",
					},
				},
				fieldLease: {
					Type:        framework.TypeBool,
					Default:     true,
					Description: "Whether token reads through this role return a lease. false: the same data with no lease (a read writes nothing to storage and costs what a plain read costs); clients read again by expires_in.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Lease",
					},
				},
			},
			ExistenceCheck: b.pathRoleExistenceCheck,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathRoleRead,
					Summary:  "Read a role.",
					Responses: map[int][]framework.Response{
						200: {{Description: "OK", Fields: roleResponseFields}},
					},
				},
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    b.pathRoleWrite,
					Summary:                     "Create or update a role.",
					Responses:                   noContent("The role was stored."),
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathRoleWrite,
					Summary:                     "Create or update a role.",
					Responses:                   noContent("The role was stored."),
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    b.pathRoleDelete,
					Summary:                     "Delete a role; tokens already issued stay valid.",
					Responses:                   noContent("The role was deleted."),
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis:    "Manage a role: which kind of Naver Commerce token token/<name> returns.",
			HelpDescription: strings.TrimSpace(pathRoleHelp),
		},
	}
}

const pathRoleHelp = `
A role names the token that "token/<name>" returns: type SELF for the application's own data,
or type SELLER with the account_id of a seller who authorised the application. Roles with the
same type and account share one cached token, so defining a role per application or team costs
no extra requests to Naver. ttl caps the lease of tokens read through the role; by default the
lease is the token's remaining life. min_remaining_ttl is the least life a token read through
the role has: set it for consumers that ignore leases and re-read on a timer (the timer plus
5 minutes). Deleting a role does not revoke tokens already issued.
`

var roleResponseFields = map[string]*framework.FieldSchema{
	fieldType:            {Type: framework.TypeString, Description: "SELF or SELLER."},
	fieldAccountID:       {Type: framework.TypeString, Description: "Seller account ID (SELLER only)."},
	fieldTTL:             {Type: framework.TypeDurationSecond, Description: "Lease cap in seconds; 0 means the token's remaining life."},
	fieldLease:           {Type: framework.TypeBool, Description: "Whether token reads return a lease."},
	fieldMinRemainingTTL: {Type: framework.TypeDurationSecond, Description: "The least life, in seconds, a token read through the role has; 0 means 10 seconds."},
}

// role returns the named role, from memory when it was read before. Only roles that tokens
// are read through are cached: an engine with many roles keeps few in memory.
func (b *backend) role(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	if v, ok := b.roles.Load(name); ok {
		return v.(*roleEntry), nil
	}
	// Under rolesMu no write can land between reading storage and caching what was read.
	b.rolesMu.Lock()
	defer b.rolesMu.Unlock()
	if v, ok := b.roles.Load(name); ok {
		return v.(*roleEntry), nil
	}
	r, err := readRole(ctx, s, name)
	if err != nil || r == nil {
		return nil, err
	}
	b.roles.Store(name, r)
	return r, nil
}

func readRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	entry, err := s.Get(ctx, roleStoragePrefix+name)
	if err != nil {
		return nil, fmt.Errorf("reading role %q: %w", name, err)
	}
	if entry == nil {
		return nil, nil
	}
	r := new(roleEntry)
	if err := decodeEntry(entry, fmt.Sprintf("role %q", name), r); err != nil {
		return nil, err
	}
	return r, nil
}

func (b *backend) pathRolesList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathRoleExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := readRole(ctx, req.Storage, d.Get(fieldRoleName).(string))
	return r != nil, err
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := readRole(ctx, req.Storage, d.Get(fieldRoleName).(string))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: roleResponseData(r)}, nil
}

func roleResponseData(r *roleEntry) map[string]any {
	return map[string]any{
		fieldType:            r.Type,
		fieldAccountID:       r.AccountID,
		fieldTTL:             int64(r.TTL / time.Second),
		fieldLease:           !r.NoLease,
		fieldMinRemainingTTL: int64(r.MinRemainingTTL / time.Second),
	}
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get(fieldRoleName).(string)
	old, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	r, err := roleFromRequest(old, d)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	entry, err := logical.StorageEntryJSON(roleStoragePrefix+name, r)
	if err != nil {
		return nil, err
	}
	b.rolesMu.Lock()
	err = req.Storage.Put(ctx, entry)
	if err == nil {
		b.roles.Delete(name) // the next token read loads it
	}
	b.rolesMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("storing role %q: %w", name, err)
	}
	if old != nil && (old.Type != r.Type || old.AccountID != r.AccountID) {
		b.tokens.roleChanged(name)
		b.dropOrphanedToken(ctx, req.Storage, old)
	}
	return nil, nil
}

// roleFromRequest merges the request into old (nil on create) and validates the result.
func roleFromRequest(old *roleEntry, d *framework.FieldData) (*roleEntry, error) {
	r := &roleEntry{Format: roleFormat}
	if old != nil {
		*r = *old
	}
	if v, ok, err := d.GetOkErr(fieldType); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldType, err)
	} else if ok {
		r.Type = strings.ToUpper(strings.TrimSpace(v.(string)))
	}
	switch r.Type {
	case tokenTypeSelf, tokenTypeSeller:
	case "":
		return nil, fmt.Errorf("%s is required: SELF or SELLER", fieldType)
	default:
		return nil, fmt.Errorf("%s: must be SELF or SELLER", fieldType)
	}

	if v, ok, err := d.GetOkErr(fieldAccountID); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldAccountID, err)
	} else if ok {
		r.AccountID = v.(string)
	}
	if err := validateAccountID(r.AccountID); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldAccountID, err)
	}
	switch {
	case r.Type == tokenTypeSeller && r.AccountID == "":
		return nil, fmt.Errorf("%s is required when %s is SELLER", fieldAccountID, fieldType)
	case r.Type == tokenTypeSelf && r.AccountID != "":
		return nil, fmt.Errorf(`%s must not be set when %s is SELF (Naver penalises it); set %s="" to clear it`, fieldAccountID, fieldType, fieldAccountID)
	}

	if v, ok, err := d.GetOkErr(fieldTTL); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldTTL, err)
	} else if ok {
		ttl := time.Duration(v.(int)) * time.Second
		if ttl < 0 {
			return nil, fmt.Errorf("%s: must not be negative", fieldTTL)
		}
		r.TTL = ttl
	}

	if v, ok, err := d.GetOkErr(fieldMinRemainingTTL); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldMinRemainingTTL, err)
	} else if ok {
		minLife := time.Duration(v.(int)) * time.Second
		if minLife < 0 || minLife > maxMinRemainingTTL {
			return nil, fmt.Errorf("%s: must be from 0 to %dm (a token with 30 minutes or more left is the one Naver hands back, so no read can promise more)", fieldMinRemainingTTL, maxMinRemainingTTL/time.Minute)
		}
		r.MinRemainingTTL = minLife
	}

	if v, ok, err := d.GetOkErr(fieldLease); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldLease, err)
	} else if ok {
		r.NoLease = !v.(bool)
	}
	return r, nil
}

func validateAccountID(id string) error {
	if len(id) > maxAccountIDLength {
		return fmt.Errorf("must be at most %d characters", maxAccountIDLength)
	}
	for _, c := range id {
		if !unicode.IsPrint(c) || unicode.IsSpace(c) {
			return errors.New("must be printable characters without white space")
		}
	}
	return nil
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get(fieldRoleName).(string)
	old, err := readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	b.rolesMu.Lock()
	err = req.Storage.Delete(ctx, roleStoragePrefix+name)
	if err == nil {
		b.roles.Delete(name)
	}
	b.rolesMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("deleting role %q: %w", name, err)
	}
	b.tokens.roleChanged(name)
	b.dropOrphanedToken(ctx, req.Storage, old)
	return nil, nil
}

// dropOrphanedToken evicts the cached token of old's key, in memory and storage, when no
// role names that key any more (old was deleted or now names another). Only roles read since
// the plugin started are known to the cache, so every role is checked.
func (b *backend) dropOrphanedToken(ctx context.Context, s logical.Storage, old *roleEntry) {
	if old == nil {
		return
	}
	st, err := b.getConfig(ctx, s)
	if err != nil || st == nil {
		return
	}
	key := old.tokenKey(st.config.ClientID)
	named, err := b.keyNamed(st.config.ClientID)(ctx, s, key, nil)
	if err != nil {
		b.Logger().Warn("checking whether a role still names the token failed; the periodic run evicts it", "type", key.Type, "error", err)
		return
	}
	if !named {
		if err := b.tokens.evictKey(ctx, s, key); err != nil {
			b.Logger().Warn("evicting the token no role names failed", "type", key.Type, "error", err)
		}
	}
}

// keyNamed reports whether any role still names key: first the roles known to read it,
// then, only if none of those does, every role.
func (b *backend) keyNamed(clientID string) keyNamedFunc {
	return func(ctx context.Context, s logical.Storage, key tokenKey, hints []string) (bool, error) {
		for _, name := range hints {
			r, err := b.role(ctx, s, name)
			if err != nil {
				return false, err
			}
			if r != nil && r.tokenKey(clientID) == key {
				return true, nil
			}
		}
		names, err := s.List(ctx, roleStoragePrefix)
		if err != nil {
			return false, fmt.Errorf("listing roles: %w", err)
		}
		for _, name := range names {
			r, err := readRole(ctx, s, name)
			if err != nil {
				return false, err
			}
			if r != nil && r.tokenKey(clientID) == key {
				return true, nil
			}
		}
		return false, nil
	}
}
