package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
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

	fieldAllowedAccountIDs = "allowed_account_ids"

	fieldMaxNewAccounts = "max_new_accounts_per_hour"
	// maxNewAccountsLimit bounds max_new_accounts_per_hour: past it, a caller guessing
	// account IDs could earn the application Naver's penalty on its own.
	maxNewAccountsLimit = 1000

	maxAccountIDLength = 128
	// maxAllowedAccountIDs bounds a many-seller role's list, so its storage entry stays far
	// below Raft's default max_entry_size (1 MiB) even with the longest IDs.
	maxAllowedAccountIDs = 5000
	// accountWildcard in allowed_account_ids matches any run of characters (also none).
	accountWildcard = "*"

	// maxMinRemainingTTL bounds min_remaining_ttl: a token with 30 minutes or more left is the
	// one Naver hands back, so no read can be given more than that; the minute kept back is
	// the longest a request to Naver may take (request_timeout), by which a served token's
	// life can trail Naver's view of it.
	maxMinRemainingTTL = refreshWindow - time.Minute
)

// roleNamePattern captures any role name in a path (up to a "/", which starts a seller's
// account on the token and status paths); checkRoleName then refuses a bad one with
// an error that says which names are allowed (checkRoleNamesEverywhere).
var roleNamePattern = "(?P<" + fieldRoleName + ">[^/]+)"

// roleNameRule is what a role name may be: Vault's usual name rule
// (framework.GenericNameRegex), which role names have always followed.
var roleNameRule = regexp.MustCompile("^" + framework.GenericNameRegex(fieldRoleName) + "$")

func checkRoleName(name string) error {
	if roleNameRule.MatchString(name) {
		return nil
	}
	shown := name
	if len(shown) > 60 {
		shown = shown[:60] + "..."
	}
	return fmt.Errorf(`role name %q is not allowed: a role name is letters, digits and "_", with "-" or "." allowed between them (not first or last), e.g. my-store or shop_1.orders`, shown)
}

// roleEntry is a stored role: which kind of token it reads.
type roleEntry struct {
	Format    int    `json:"format,omitempty"` // see storage_format.go
	Type      string `json:"type"`
	AccountID string `json:"account_id,omitempty"`
	// AllowedAccountIDs makes a SELLER role serve many sellers, each read as
	// token/<role>/<account_id>: account IDs, or globs where * matches any run of characters.
	// A SELLER role has exactly one of AccountID and AllowedAccountIDs.
	AllowedAccountIDs []string      `json:"allowed_account_ids,omitempty"`
	TTL               time.Duration `json:"ttl"`
	// NoLease is stored negated so roles written before the field existed keep leases.
	NoLease bool `json:"no_lease,omitempty"`
	// MinRemainingTTL: a read never returns a token with less life left (0: minServableLife).
	MinRemainingTTL time.Duration `json:"min_remaining_ttl,omitempty"`
	// MaxNewAccountsPerHour bounds, on a many-seller role, the accounts without a token from
	// Naver that reads may ask for in an hour (0: core.DefaultNewAccountsPerHour).
	MaxNewAccountsPerHour int `json:"max_new_accounts_per_hour,omitempty"`
}

// minLife is the least life a token read through the role must have.
func (r *roleEntry) minLife() time.Duration { return max(r.MinRemainingTTL, minServableLife) }

// tokenKey is the key of a single-account role (SELF, or SELLER with account_id).
func (r *roleEntry) tokenKey(clientID string) tokenKey {
	return tokenKey{ClientID: clientID, Type: r.Type, AccountID: r.AccountID}
}

// manySellers reports whether the role names a set of accounts (read as token/<role>/<account_id>).
func (r *roleEntry) manySellers() bool { return len(r.AllowedAccountIDs) > 0 }

// allows reports whether a many-seller role serves account.
func (r *roleEntry) allows(account string) bool {
	if account == "" {
		return false
	}
	for _, pattern := range r.AllowedAccountIDs {
		if core.GlobMatch(pattern, account) {
			return true
		}
	}
	return false
}

// names reports whether tokens of key are read through the role.
func (r *roleEntry) names(clientID string, key tokenKey) bool {
	if key.ClientID != clientID || key.Type != r.Type {
		return false
	}
	if r.manySellers() {
		return r.allows(key.AccountID)
	}
	return key.AccountID == r.AccountID
}

// storageFormat is the format the role is written in: a many-seller role needs format 2, so
// that an older plugin (after a rollback) refuses it instead of reading it as a SELLER role
// with no account. Other roles stay in format 1, which every version since formats exist reads.
func (r *roleEntry) storageFormat() int {
	if r.manySellers() {
		return roleFormat
	}
	return 1
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
			Pattern: "roles/" + roleNamePattern,
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
					Description: "The seller's account ID or UID (e.g. ncp_...). A SELLER role needs this or allowed_account_ids; not allowed for SELF: Naver penalises SELF requests that carry one.",
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Account ID",
					},
				},
				fieldAllowedAccountIDs: {
					Type:        framework.TypeCommaStringSlice,
					Description: `SELLER only, instead of account_id: the sellers this role serves, read as token/<name>/<account_id>. Account IDs, or globs where * matches any run of characters ("ncp_*", or "*" for every seller who authorised the application).`,
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Allowed account IDs",
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
				fieldMaxNewAccounts: {
					Type:        framework.TypeInt,
					Description: fmt.Sprintf("Many-seller roles: the most accounts without a token from Naver (new sellers, typos, sellers who revoked the application) that reads may ask Naver for in any hour; accounts Naver issues a token to do not count. Over it, reads of such accounts get 429 until the hour passes. 0 (default): %d. At most %d.", core.DefaultNewAccountsPerHour, maxNewAccountsLimit),
					DisplayAttrs: &framework.DisplayAttributes{
						Name: "Max new accounts per hour",
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
or type SELLER with the account_id of a seller who authorised the application. A SELLER role
may instead name many sellers with allowed_account_ids (IDs or globs such as "ncp_*"): each
seller's token is then read as "token/<name>/<account_id>", so a policy can grant one seller's
path to one tenant. Roles with the
same type and account share one cached token, so defining a role per application or team costs
no extra requests to Naver. ttl caps the lease of tokens read through the role; by default the
lease is the token's remaining life. min_remaining_ttl is the least life a token read through
the role has: set it for consumers that ignore leases and re-read on a timer (the timer plus
5 minutes). Deleting a role does not revoke tokens already issued.
`

var roleResponseFields = map[string]*framework.FieldSchema{
	fieldType:              {Type: framework.TypeString, Description: "SELF or SELLER."},
	fieldAccountID:         {Type: framework.TypeString, Description: "Seller account ID (SELLER only; empty on a many-seller role)."},
	fieldAllowedAccountIDs: {Type: framework.TypeCommaStringSlice, Description: "The sellers a many-seller role serves (IDs or globs); empty on other roles."},
	fieldTTL:               {Type: framework.TypeDurationSecond, Description: "Lease cap in seconds; 0 means the token's remaining life."},
	fieldLease:             {Type: framework.TypeBool, Description: "Whether token reads return a lease."},
	fieldMinRemainingTTL:   {Type: framework.TypeDurationSecond, Description: "The least life, in seconds, a token read through the role has; 0 means 10 seconds."},
	fieldMaxNewAccounts:    {Type: framework.TypeInt, Description: "Many-seller roles: the most accounts without a token from Naver that reads may ask for in an hour and Naver refuses (requests under way count; Naver failing, or refusing the application's secret, does not); 0 means the default (10)."},
}

// unreadableRoleError is a stored role this version cannot read: stored by a newer plugin
// (after a rollback) or damaged. It is reported, and never blocks another role.
type unreadableRoleError struct {
	name string
	err  error
}

func (e *unreadableRoleError) Error() string {
	return fmt.Sprintf("%v; delete the role, or overwrite it with its full definition", e.err)
}

func (e *unreadableRoleError) Unwrap() error { return e.err }

// unreadableRoles remembers, by name, the stored roles this version cannot read and why, so
// that status can list them without reading every role on every request. Every read of a
// role updates it, and so does a scan of every role (see scanRoles).
type unreadableRoles struct {
	mu        sync.Mutex
	reasons   map[string]string
	scannedAt time.Time // zero: no scan since the plugin started
}

func (u *unreadableRoles) note(name string, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var ue *unreadableRoleError
	if errors.As(err, &ue) {
		if u.reasons == nil {
			u.reasons = make(map[string]string)
		}
		u.reasons[name] = ue.err.Error()
		return
	}
	if err == nil {
		delete(u.reasons, name)
	}
}

func (u *unreadableRoles) forget(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.reasons, name)
}

// list returns a copy of what is known: role name → why it cannot be read.
func (u *unreadableRoles) list() map[string]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]string, len(u.reasons))
	for k, v := range u.reasons {
		out[k] = v
	}
	return out
}

// roleScanInterval is how often the periodic run reads every role again: to find unreadable
// ones, and to give the core every role as storage holds it.
const roleScanInterval = time.Hour

// scanRoles reads every role into the core (see loadRoles) when none was read since the
// start, or, unless onlyFirst, none for roleScanInterval. It costs a storage read per role,
// so it runs rarely; reads of single roles keep the list of unreadable ones current between.
func (b *backend) scanRoles(ctx context.Context, s logical.Storage, onlyFirst bool) error {
	b.unreadable.mu.Lock()
	last := b.unreadable.scannedAt
	b.unreadable.mu.Unlock()
	if b.tokens.rolesKnown() && !last.IsZero() && (onlyFirst || b.now().Sub(last) < roleScanInterval) {
		return nil
	}
	return b.loadRoles(ctx, s)
}

func isUnreadableRole(err error) bool {
	var ue *unreadableRoleError
	return errors.As(err, &ue)
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
	r, err := b.readRole(ctx, s, name)
	if err != nil || r == nil {
		return nil, err
	}
	b.roles.Store(name, r)
	return r, nil
}

// readRole reads the named role from storage (nil when there is none) and keeps the list of
// unreadable roles current.
func (b *backend) readRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	r, err := readRole(ctx, s, name)
	b.unreadable.note(name, err)
	return r, err
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
		return nil, &unreadableRoleError{name: name, err: err}
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

// pathRoleExistenceCheck: a role that cannot be read exists all the same, so a write to it
// is an update (which needs the full definition) and never fails before the handler runs.
func (b *backend) pathRoleExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := b.readRole(ctx, req.Storage, d.Get(fieldRoleName).(string))
	if isUnreadableRole(err) {
		return true, nil
	}
	return r != nil, err
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := b.readRole(ctx, req.Storage, d.Get(fieldRoleName).(string))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: roleResponseData(r)}, nil
}

func roleResponseData(r *roleEntry) map[string]any {
	allowed := r.AllowedAccountIDs
	if allowed == nil {
		allowed = []string{}
	}
	return map[string]any{
		fieldType:              r.Type,
		fieldAccountID:         r.AccountID,
		fieldAllowedAccountIDs: allowed,
		fieldTTL:               int64(r.TTL / time.Second),
		fieldLease:             !r.NoLease,
		fieldMinRemainingTTL:   int64(r.MinRemainingTTL / time.Second),
		fieldMaxNewAccounts:    r.MaxNewAccountsPerHour,
	}
}

// lockRole serialises writes and deletes of one role, and holds off a load of every role
// (see loadRoles) meanwhile, so the core learns role changes in the order storage did. The
// returned function unlocks.
func (b *backend) lockRole(name string) func() {
	b.roleChecksMu.RLock()
	lock := locksutil.LockForKey(b.roleLocks, name)
	lock.Lock()
	return func() {
		lock.Unlock()
		b.roleChecksMu.RUnlock()
	}
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get(fieldRoleName).(string)
	// Before the write: the core can tell a key no role names any more only once it knows
	// every role.
	if err := b.ensureRoles(ctx, req.Storage); err != nil {
		b.Logger().Warn("reading every role failed; keys this write leaves unnamed stop being cached once they are read", "error", err)
	}
	_, _, _, errResp, err := b.storeRole(ctx, req.Storage, name, d)
	return errResp, err
}

// storeRole merges the request into the stored role and stores the result, under the
// role's lock, so concurrent writes never lose an update. old is the role before (nil on
// create), r the role stored; unreadable says the stored role could not be read and was
// replaced whole.
func (b *backend) storeRole(ctx context.Context, s logical.Storage, name string, d *framework.FieldData) (old, r *roleEntry, unreadable bool, errResp *logical.Response, err error) {
	unlock := b.lockRole(name)
	defer unlock()
	old, err = b.readRole(ctx, s, name)
	var ue *unreadableRoleError
	switch {
	case errors.As(err, &ue):
		if _, ok := d.Raw[fieldType]; !ok {
			return nil, nil, false, logical.ErrorResponse("role %q cannot be read (%v), so this update cannot be merged into it: write its full definition (%s, with %s or %s for SELLER; %s and %s otherwise take their defaults) to replace it, or delete it",
				name, ue.err, fieldType, fieldAccountID, fieldAllowedAccountIDs, fieldTTL, fieldLease), nil
		}
		old, unreadable = nil, true
	case err != nil:
		return nil, nil, false, nil, err
	}
	r, err = roleFromRequest(old, d)
	if err != nil {
		return nil, nil, false, logical.ErrorResponse(err.Error()), nil
	}
	r.Format = r.storageFormat()
	entry, err := logical.StorageEntryJSON(roleStoragePrefix+name, r)
	if err != nil {
		return nil, nil, false, nil, err
	}
	b.rolesMu.Lock()
	err = s.Put(ctx, entry)
	if err == nil {
		b.roles.Delete(name) // the next token read loads it
		b.unreadable.forget(name)
	}
	b.rolesMu.Unlock()
	if err != nil {
		return nil, nil, false, nil, fmt.Errorf("storing role %q: %w", name, err)
	}
	// Under the role's lock: the core learns this role's changes in storage's order. A key
	// the write leaves unnamed stops being cached before the write returns.
	b.tokens.setRole(s, name, r)
	return old, r, unreadable, nil, nil
}

// roleFromRequest merges the request into old (nil on create) and validates the result.
func roleFromRequest(old *roleEntry, d *framework.FieldData) (*roleEntry, error) {
	r := &roleEntry{Format: roleFormat}
	if old != nil {
		*r = *old
	}
	if v, ok, err := d.GetOkErr(fieldType); err != nil {
		return nil, fieldValueError(d, fieldType)
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
		return nil, fieldValueError(d, fieldAccountID)
	} else if ok {
		r.AccountID = v.(string)
	}
	if err := validateAccountID(r.AccountID); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldAccountID, err)
	}
	if v, ok, err := d.GetOkErr(fieldAllowedAccountIDs); err != nil {
		return nil, fmt.Errorf("%s: %w", fieldAllowedAccountIDs, err)
	} else if ok {
		allowed, err := normaliseAllowedAccountIDs(v.([]string))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldAllowedAccountIDs, err)
		}
		r.AllowedAccountIDs = allowed
	}
	switch {
	case r.Type == tokenTypeSeller && r.AccountID == "" && !r.manySellers():
		return nil, fmt.Errorf("%s or %s is required when %s is SELLER", fieldAccountID, fieldAllowedAccountIDs, fieldType)
	case r.Type == tokenTypeSeller && r.AccountID != "" && r.manySellers():
		return nil, fmt.Errorf(`give either %s (one seller) or %s (many sellers), not both; set %s="" or %s="" to clear the other`, fieldAccountID, fieldAllowedAccountIDs, fieldAccountID, fieldAllowedAccountIDs)
	case r.Type == tokenTypeSelf && r.AccountID != "":
		return nil, fmt.Errorf(`%s must not be set when %s is SELF (Naver penalises it); set %s="" to clear it`, fieldAccountID, fieldType, fieldAccountID)
	case r.Type == tokenTypeSelf && r.manySellers():
		return nil, fmt.Errorf(`%s must not be set when %s is SELF; set %s="" to clear it`, fieldAllowedAccountIDs, fieldType, fieldAllowedAccountIDs)
	}

	if v, ok, err := d.GetOkErr(fieldTTL); err != nil {
		return nil, fieldValueError(d, fieldTTL)
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
		return nil, fieldValueError(d, fieldLease)
	} else if ok {
		r.NoLease = !v.(bool)
	}

	if v, ok, err := d.GetOkErr(fieldMaxNewAccounts); err != nil {
		return nil, fieldValueError(d, fieldMaxNewAccounts)
	} else if ok {
		n := v.(int)
		if n < 0 || n > maxNewAccountsLimit {
			return nil, fmt.Errorf("%s: must be from 0 (the default, %d) to %d", fieldMaxNewAccounts, core.DefaultNewAccountsPerHour, maxNewAccountsLimit)
		}
		r.MaxNewAccountsPerHour = n
	}
	return r, nil
}

// normaliseAllowedAccountIDs validates the entries of allowed_account_ids, naming the bad
// ones, and returns them sorted without repeats (nil when empty: the field is cleared).
func normaliseAllowedAccountIDs(in []string) ([]string, error) {
	if len(in) > maxAllowedAccountIDs {
		return nil, fmt.Errorf("at most %d entries (globs such as ncp_* name many sellers at once), got %d", maxAllowedAccountIDs, len(in))
	}
	var out, bad []string
	for _, id := range in {
		if id == "" {
			continue // "a,,b" or the empty string that clears the field
		}
		if err := validateAccountID(id); err != nil {
			bad = append(bad, fmt.Sprintf("%q (%v)", id, err))
			continue
		}
		out = append(out, id)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("invalid entries: %s", strings.Join(bad, ", "))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
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
	if err := b.ensureRoles(ctx, req.Storage); err != nil {
		b.Logger().Warn("reading every role failed; keys this delete leaves unnamed stop being cached once they are read", "error", err)
	}
	_, err := b.deleteRole(ctx, req.Storage, name)
	return nil, err
}

// deleteRole deletes the role under its lock, also when it cannot be read; old is what it
// was (nil when it did not exist or could not be read).
func (b *backend) deleteRole(ctx context.Context, s logical.Storage, name string) (old *roleEntry, err error) {
	unlock := b.lockRole(name)
	defer unlock()
	old, err = readRole(ctx, s, name)
	if err != nil {
		// An operator must always be able to remove a role: whatever is wrong with it, the
		// periodic run checks the keys it was read through.
		b.Logger().Warn("deleting a role that cannot be read", "role", name, "error", err)
		old = nil
	}
	b.rolesMu.Lock()
	err = s.Delete(ctx, roleStoragePrefix+name)
	if err == nil {
		b.roles.Delete(name)
		b.unreadable.forget(name)
	}
	b.rolesMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("deleting role %q: %w", name, err)
	}
	b.tokens.setRole(s, name, nil)
	return old, nil
}
