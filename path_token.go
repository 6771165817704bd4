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
)

const (
	operationPrefix = "navercommerce"
	secretTypeToken = "navercommerce_token"

	fieldAccessToken = "access_token"
	fieldTokenType   = "token_type"
	fieldExpiresAt   = "expires_at"
	fieldExpiresIn   = "expires_in"
	internalRole     = "role"
)

func pathToken(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "token/" + framework.GenericNameRegex(fieldRoleName),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			fieldRoleName: {
				Type:        framework.TypeString,
				Description: "Name of the role to read a token for.",
				Required:    true,
			},
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
				Summary:                   "Drop the cached token of a role's type and account; the next read asks Naver.",
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

Deleting token/<name> drops the cached token of the role's type and account, in memory and
storage, so that the next read asks Naver: for when the token is dead at Naver while the cache
still has hours (for example after the seller re-authorised the application).
`

var tokenResponseFields = map[string]*framework.FieldSchema{
	fieldAccessToken: {Type: framework.TypeString, Description: "The access token."},
	fieldTokenType:   {Type: framework.TypeString, Description: `Always "Bearer".`},
	fieldExpiresAt:   {Type: framework.TypeTime, Description: "When the token expires (RFC 3339)."},
	fieldExpiresIn:   {Type: framework.TypeInt, Description: "Seconds the token has left."},
	fieldType:        {Type: framework.TypeString, Description: "The role's token type: SELF or SELLER."},
	fieldAccountID:   {Type: framework.TypeString, Description: "The role's seller account ID (SELLER only)."},
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
	name := d.Get(fieldRoleName).(string)
	role, st, errResp, err := b.roleAndConfig(ctx, req, name)
	if errResp != nil || err != nil {
		return errResp, err
	}
	key := role.tokenKey(st.config.ClientID)
	what := fmt.Sprintf("requesting a %s token for role %q%s", key.Type, name, accountSuffix(key))
	res, err := b.tokens.get(ctx, req.Storage, key, name, role.minLife(), &st.policy)
	if err != nil {
		b.metrics.tokenRead(readFailed)
		return nil, tokenRequestError(what, err)
	}

	// Judged at the last moment: Vault turns a lease TTL of 0 or less into the mount's
	// default (768 h), and a token with seconds left is of no use to anyone.
	tok := res.token
	left := tok.life(b.now()).Truncate(time.Second)
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
		fieldAccountID:   role.AccountID,
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
	name := d.Get(fieldRoleName).(string)
	role, st, errResp, err := b.roleAndConfig(ctx, req, name)
	if errResp != nil || err != nil {
		return errResp, err
	}
	key := role.tokenKey(st.config.ClientID)
	if err := b.tokens.drop(ctx, req.Storage, key); err != nil {
		return nil, fmt.Errorf("dropping the cached %s token of role %q: %w", key.Type, name, err)
	}
	b.Logger().Info("cached token dropped by request; the next read asks Naver", "role", name, "type", key.Type)
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

// periodic is the backend's periodic function (Vault calls it about once a minute): it
// renews tokens in use before reads need them and evicts tokens nobody can read, within
// the deadline Vault gives it.
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil || st == nil {
		return err
	}
	if n := b.tokens.maintain(ctx, req.Storage, &st.policy, b.keyNamed(st.config.ClientID)); n > 0 {
		b.Logger().Debug("renewed tokens in use", "count", n)
	}
	return nil
}

// fetchToken asks Naver for key's token within the configured time limit.
func (b *backend) fetchToken(ctx context.Context, client *naverClient, cfg *naverConfig, key tokenKey) (accessToken, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	return client.requestToken(ctx, key.Type, key.AccountID)
}

func accountSuffix(key tokenKey) string {
	if key.AccountID == "" {
		return ""
	}
	return fmt.Sprintf(" (account %s)", key.AccountID)
}

// tokenRequestError maps a failed token request to what the caller sees: Naver refusing the
// request is the caller's to fix (400); Naver failing or unreachable is a bad gateway (502).
func tokenRequestError(what string, err error) error {
	msg := fmt.Sprintf("%s: %v", what, err)
	var ue *upstreamError
	if errors.As(err, &ue) && ue.callerFault() {
		return logical.CodedError(http.StatusBadRequest, msg)
	}
	var be *budgetError
	if errors.As(err, &be) {
		return logical.CodedError(http.StatusTooManyRequests, msg)
	}
	return logical.CodedError(http.StatusBadGateway, msg)
}
