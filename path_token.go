package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

const (
	operationPrefix = "navercommerce"
	secretTypeToken = "navercommerce_token"

	fieldAccessToken = "access_token"
	fieldTokenType   = "token_type"
	fieldExpiresAt   = "expires_at"
	fieldExpiresIn   = "expires_in"
	fieldForce       = "force"
	internalRole     = "role"
)

func pathToken(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "token/" + roleNamePattern,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			fieldRoleName: {
				Type:        framework.TypeString,
				Description: "Name of the role to read a token for.",
				Required:    true,
			},
			fieldForce: forceField,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathTokenRead,
				Summary:  "Read an access token for a role.",
				// A read may store a new token: on a performance standby that write would fail.
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: false,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "generate",
					OperationSuffix: "token",
				},
				Responses: map[int][]framework.Response{
					200: {{Description: "OK", Fields: tokenResponseFields}},
				},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                  b.pathTokenDelete,
				Summary:                   "Drop the cached token of a role's type and account once Naver refuses it; the next read asks Naver.",
				ForwardPerformanceStandby: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "drop",
					OperationSuffix: "cached-token",
				},
				Responses: noContent("The cached token was dropped."),
			},
		},
		HelpSynopsis:    "Read a Naver Commerce access token for a role.",
		HelpDescription: strings.TrimSpace(pathTokenHelp),
	}
}

// pathSellerToken is token/<name>/<account_id>: one seller of a many-seller role.
func pathSellerToken(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "token/" + framework.GenericNameRegex(fieldRoleName) + "/" + framework.MatchAllRegex(fieldAccountID),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			fieldRoleName: {
				Type:        framework.TypeString,
				Description: "Name of the role to read a token for.",
				Required:    true,
			},
			fieldAccountID: {
				Type:        framework.TypeString,
				Description: "The seller's account ID: one of the accounts the many-seller role allows.",
				Required:    true,
			},
			fieldForce: forceField,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:                    b.pathSellerTokenRead,
				Summary:                     "Read an access token for one seller of a many-seller role.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: false,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "generate",
					OperationSuffix: "seller-token",
				},
				Responses: map[int][]framework.Response{
					200: {{Description: "OK", Fields: tokenResponseFields}},
				},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                  b.pathSellerTokenDelete,
				Summary:                   "Drop the cached token of one seller of a many-seller role; the next read asks Naver.",
				ForwardPerformanceStandby: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "drop",
					OperationSuffix: "cached-seller-token",
				},
				Responses: noContent("The cached token was dropped."),
			},
		},
		HelpSynopsis:    "Read a Naver Commerce access token for one seller of a many-seller role.",
		HelpDescription: strings.TrimSpace(pathTokenHelp),
	}
}

const pathTokenHelp = `
Returns an access token for the role's type and account, to send to the Naver Commerce API as
"Authorization: Bearer <access_token>". The token comes from the cache while it has 30 minutes
or more left (Naver would hand back the same one); with less left, Naver is asked for a new
token (the old one stays valid until it expires). Concurrent reads share one request to Naver.

The response is a lease whose duration is the time the token really has left (capped by the
role's ttl and the mount's max lease TTL), so Vault Agent fetches a new token before the old
one expires; a role with lease=false returns the same data without a lease. Leases are not
renewable: read again for a new token. Revoking a lease is local only: Naver has no way to
revoke a token, and the token stays valid until it expires. A token is never returned with
less than 10 seconds left, or less than the role's min_remaining_ttl: it is renewed first, and
if that fails the read fails (502) instead, saying why.

Deleting token/<name> drops the cached token of the role's type and account, so that the
next read asks Naver: for when the token is dead at Naver while the cache still has hours (for
example after the seller re-authorised the application). First the plugin asks Naver, with one
authenticated API call, whether it still accepts the token: if it does, the token is kept and
the answer says so (asking Naver for a new token while it has 30 minutes or more left is what
Naver penalises). force=true drops it without asking. What is known of a dropped token (when it
expires, never the token itself) is kept until it expires, so a token Naver hands back is never
served past its real expiry.

A role with allowed_account_ids serves many sellers: read "token/<name>/<account_id>" (and
delete it to drop that seller's token). An account ID that is not valid or not allowed by the
role is refused with 400, and nothing is asked of Naver; "token/<name>" on such a role is a 400
saying to add the account.
`

// forceField is the drop's force option, on both token paths.
var forceField = &framework.FieldSchema{
	Type:        framework.TypeBool,
	Description: "Delete only: drop the token without first asking Naver whether it still accepts it. If Naver does, the next read asks for a token Naver would hand back: a needless request, which Naver may penalise by limiting the whole application.",
	Query:       true,
}

var tokenResponseFields = map[string]*framework.FieldSchema{
	fieldAccessToken: {Type: framework.TypeString, Description: "The access token."},
	fieldTokenType:   {Type: framework.TypeString, Description: `Always "Bearer".`},
	fieldExpiresAt:   {Type: framework.TypeTime, Description: "When the token expires (RFC 3339)."},
	fieldExpiresIn:   {Type: framework.TypeInt, Description: "Seconds the token has left."},
	fieldType:        {Type: framework.TypeString, Description: "The role's token type: SELF or SELLER."},
	fieldAccountID:   {Type: framework.TypeString, Description: "The seller's account ID (SELLER only): the role's, or the one read on a many-seller role."},
}

func secretToken(b *backend) *framework.Secret {
	return &framework.Secret{
		Type:   secretTypeToken,
		Fields: tokenResponseFields,
		// Naver cannot revoke a token, and many leases share one cached token: revoking a
		// lease only ends the lease.
		Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
			return nil, nil
		},
	}
}

func (b *backend) pathTokenRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.readToken(ctx, req, d.Get(fieldRoleName).(string), nil)
}

func (b *backend) pathSellerTokenRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	account := d.Get(fieldAccountID).(string)
	return b.readToken(ctx, req, d.Get(fieldRoleName).(string), &account)
}

// readToken serves a token read of role name; account is the seller named in the path of a
// many-seller role's read (nil for token/<name>).
func (b *backend) readToken(ctx context.Context, req *logical.Request, name string, account *string) (*logical.Response, error) {
	role, st, errResp, err := b.roleAndConfig(ctx, req, name)
	if errResp != nil || err != nil {
		return errResp, err
	}
	key, errResp := roleTokenKey(req, name, role, st.config.ClientID, account)
	if errResp != nil {
		return errResp, nil
	}
	what := fmt.Sprintf("requesting a %s token for role %q%s", key.Type, name, accountSuffix(key))
	var newAccounts int
	if role.manySellers() {
		newAccounts = role.newAccountsPerHour()
	}
	res, err := b.tokens.readToken(ctx, req.Storage, key, name, role.minLife(), newAccounts, !role.NoLease)
	if err != nil {
		b.metrics.tokenRead(readFailed)
		return nil, tokenRequestError(what, err, role.manySellers())
	}

	// Judged at the last moment: Vault turns a lease TTL of 0 or less into the mount's
	// default (768 h), and a token with seconds left is of no use to anyone.
	tok := res.token
	left := tok.Life(b.now()).Truncate(time.Second)
	if left < minServableLife {
		b.metrics.tokenRead(readFailed)
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("%s: the token has only %s left and no new one could be had", what, left))
	}
	data := map[string]any{
		fieldAccessToken: tok.AccessToken,
		fieldTokenType:   tok.TokenType,
		fieldExpiresAt:   tok.ExpiresAt.UTC().Format(time.RFC3339),
		fieldExpiresIn:   int64(left / time.Second),
		fieldType:        role.Type,
		fieldAccountID:   key.AccountID,
	}
	var resp *logical.Response
	if role.NoLease {
		resp = &logical.Response{Data: data}
	} else {
		ttl := left
		if role.TTL > 0 && role.TTL < ttl {
			ttl = role.TTL
		}
		resp = b.Secret(secretTypeToken).Response(data, map[string]any{internalRole: name})
		resp.Secret.TTL = ttl
		resp.Secret.MaxTTL = left
		resp.Secret.Renewable = false
	}
	switch {
	case res.renewErr != nil:
		b.metrics.tokenRead(readStale)
		resp.AddWarning(res.warning())
	case res.fetched:
		b.metrics.tokenRead(readFetched)
	default:
		b.metrics.tokenRead(readCached)
	}
	return resp, nil
}

func (b *backend) pathTokenDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.dropToken(ctx, req, d.Get(fieldRoleName).(string), nil, d.Get(fieldForce).(bool))
}

func (b *backend) pathSellerTokenDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	account := d.Get(fieldAccountID).(string)
	return b.dropToken(ctx, req, d.Get(fieldRoleName).(string), &account, d.Get(fieldForce).(bool))
}

// dropToken drops the cached token of role name (and account, as in readToken) once Naver
// refuses it, or at once with force.
func (b *backend) dropToken(ctx context.Context, req *logical.Request, name string, account *string, force bool) (*logical.Response, error) {
	role, st, errResp, err := b.roleAndConfig(ctx, req, name)
	if errResp != nil || err != nil {
		return errResp, err
	}
	key, errResp := roleTokenKey(req, name, role, st.config.ClientID, account)
	if errResp != nil {
		return errResp, nil
	}
	done := b.tokens.dropToken(ctx, req.Storage, key, force)
	if done.Err != nil {
		return nil, tokenRequestError(fmt.Sprintf("dropping the cached %s token of role %q%s: nothing was dropped; drop it anyway with %s=true", key.Type, name, accountSuffix(key), fieldForce), done.Err, role.manySellers())
	}
	resp := &logical.Response{}
	switch done.Outcome {
	case core.StillAlive:
		b.Logger().Info("cached token not dropped: Naver still accepts it", "role", name, "type", key.Type, "account_id", key.AccountID)
		resp.AddWarning(fmt.Sprintf("not dropped: Naver still accepts the cached token of role %q%s, so a new request would only get it back (a needless request, which Naver penalises); it stays cached. Drop it anyway with %s=true", name, accountSuffix(key), fieldForce))
		return resp, nil
	case core.NoToken:
		next := "the next read asks Naver"
		if until := done.BackoffUntil; b.now().Before(until) {
			next = fmt.Sprintf("reads share the last failure until %s, then ask Naver", until.UTC().Format(time.RFC3339))
		}
		resp.AddWarning(fmt.Sprintf("no token is cached for role %q%s; %s", name, accountSuffix(key), next))
		return resp, nil
	case core.Renewed:
		resp.AddWarning(fmt.Sprintf("not dropped: the token of role %q%s was renewed meanwhile", name, accountSuffix(key)))
		return resp, nil
	case core.RefusalCleared:
		b.Logger().Info("Naver's refusal of the account forgotten by request; the next read asks Naver", "role", name, "type", key.Type, "account_id", key.AccountID)
		resp.AddWarning(fmt.Sprintf("no token was cached for role %q%s; Naver's earlier refusal of the account is forgotten, and the next read asks Naver again", name, accountSuffix(key)))
		return resp, nil
	}
	b.Logger().Info("cached token dropped by request; the next read asks Naver", "role", name, "type", key.Type, "account_id", key.AccountID, "force", force)
	return nil, nil
}

// roleAndConfig returns the named role and the mount's config, or the error response that
// says which is missing.
func (b *backend) roleAndConfig(ctx context.Context, req *logical.Request, name string) (*roleEntry, *configState, *logical.Response, error) {
	role, err := b.role(ctx, req.Storage, name)
	if err != nil {
		return nil, nil, nil, err
	}
	if role == nil {
		return nil, nil, logical.ErrorResponse("role %q does not exist; create it with a write to %sroles/%s", name, req.MountPoint, name), nil
	}
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, nil, nil, err
	}
	if st == nil {
		return nil, nil, logical.ErrorResponse("the secrets engine is not configured: write %s and %s to %sconfig", fieldClientID, fieldClientSecret, req.MountPoint), nil
	}
	return role, st, nil, nil
}

// roleTokenKey is the key a read of role name stands for: the role's own, or, on a
// many-seller role, the seller's named in the path (account). A path that does not fit the
// role, and an account the role does not allow, are the caller's error (400), decided before
// anything is asked of Naver or kept in the cache.
func roleTokenKey(req *logical.Request, name string, role *roleEntry, clientID string, account *string) (tokenKey, *logical.Response) {
	if account == nil {
		if role.manySellers() {
			return tokenKey{}, logical.ErrorResponse("role %q serves many sellers (%s): add the seller's account ID, as in %stoken/%s/<account_id>", name, fieldAllowedAccountIDs, req.MountPoint, name)
		}
		return role.tokenKey(clientID), nil
	}
	if errResp := checkSellerAccount(req, name, role, *account); errResp != nil {
		return tokenKey{}, errResp
	}
	return tokenKey{ClientID: clientID, Type: role.Type, AccountID: *account}, nil
}

// checkSellerAccount refuses, naming it, an account that a path of role name may not carry.
func checkSellerAccount(req *logical.Request, name string, role *roleEntry, account string) *logical.Response {
	switch {
	case !role.manySellers():
		return logical.ErrorResponse("role %q serves one account, not many (it has no %s): use %stoken/%s and %sstatus/%s without an account ID", name, fieldAllowedAccountIDs, req.MountPoint, name, req.MountPoint, name)
	case account == "":
		return logical.ErrorResponse("%s is required: role %q serves many sellers, read %stoken/%s/<account_id>", fieldAccountID, name, req.MountPoint, name)
	}
	if err := validateAccountID(account); err != nil {
		return logical.ErrorResponse("%s %q: %v", fieldAccountID, account, err)
	}
	if strings.Contains(account, accountWildcard) {
		return logical.ErrorResponse("%s %q: must be one seller's account ID, not a pattern", fieldAccountID, account)
	}
	if strings.Contains(account, "/") {
		// A trailing or doubled slash would otherwise be asked of Naver as part of the ID.
		return logical.ErrorResponse("%s %q: must be one seller's account ID, without /", fieldAccountID, account)
	}
	if !role.allows(account) {
		return logical.ErrorResponse("%s %q is not one of the sellers role %q allows (see %s of %sroles/%s)", fieldAccountID, account, name, fieldAllowedAccountIDs, req.MountPoint, name)
	}
	return nil
}

// periodic is the backend's periodic function (Vault calls it about once a minute): it
// renews tokens in use before reads need them and evicts tokens nobody can read, within
// the deadline Vault gives it.
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	// Every role is known before the core decides which keys no role names; the hourly
	// rescan finds unreadable roles (and what another node changed without telling).
	if err := b.scanRoles(ctx, req.Storage, false); err != nil {
		b.Logger().Warn("reading every role failed", "error", err)
	}
	if b.roleChecksMu.TryRLock() {
		b.refreshStaleRoles(ctx, req.Storage) // roles another node changed whose reading failed
		b.roleChecksMu.RUnlock()
	}
	if _, err := b.getConfig(ctx, req.Storage); err != nil {
		return err
	}
	b.tokens.periodic(ctx, req.Storage)
	return nil
}

func accountSuffix(key tokenKey) string {
	if key.AccountID == "" {
		return ""
	}
	return fmt.Sprintf(" (account %s)", key.AccountID)
}

// tokenRequestError maps a failed token request to what the caller sees: Naver refusing the
// request is the caller's to fix (400); a budget refusal is a 429; Naver failing or
// unreachable is a bad gateway (502). accountInPath: the read was of a many-seller role,
// whose account is in the path, so the advice names the path, not the role's account_id.
func tokenRequestError(what string, err error, accountInPath bool) error {
	text := err.Error()
	var ue *upstreamError
	if errors.As(err, &ue) && accountInPath {
		text = strings.Replace(text, ue.Error(), ue.describe(true), 1)
	}
	msg := fmt.Sprintf("%s: %s", what, text)
	var ar *core.AccountRefusedError
	if errors.As(err, &ar) || (ue != nil && ue.callerFault()) {
		return logical.CodedError(http.StatusBadRequest, msg)
	}
	var be *core.BudgetError
	var ab *core.AppBudgetError
	var ne *core.NewAccountsError
	if errors.As(err, &be) || errors.As(err, &ab) || errors.As(err, &ne) {
		return logical.CodedError(http.StatusTooManyRequests, msg)
	}
	return logical.CodedError(http.StatusBadGateway, msg)
}
