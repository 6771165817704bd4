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
one expires. Leases are not renewable: read again for a new token. Revoking a lease is local
only: Naver has no way to revoke a token, and the token stays valid until it expires.
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
	if err := rejectUnknownFields(d); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	name := d.Get(fieldRoleName).(string)
	role, err := b.role(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return logical.ErrorResponse("role %q does not exist; create it with a write to %sroles/%s", name, req.MountPoint, name), nil
	}
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return logical.ErrorResponse("the secrets engine is not configured: write %s and %s to %sconfig", fieldClientID, fieldClientSecret, req.MountPoint), nil
	}
	key := role.tokenKey(st.config.ClientID)
	res, err := b.tokens.get(ctx, req.Storage, key, st.credentials, !st.config.NoBackgroundRefresh, st.fetch)
	if err != nil {
		return nil, tokenRequestError(fmt.Sprintf("requesting a %s token for role %q%s", key.Type, name, accountSuffix(key)), err)
	}

	tok := res.token
	now := b.now()
	left := tok.ExpiresAt.Sub(now).Truncate(time.Second)
	ttl := left
	if role.TTL > 0 && role.TTL < ttl {
		ttl = role.TTL
	}
	resp := b.Secret(secretTypeToken).Response(map[string]any{
		fieldAccessToken: tok.AccessToken,
		fieldTokenType:   tok.TokenType,
		fieldExpiresAt:   tok.ExpiresAt.UTC().Format(time.RFC3339),
		fieldExpiresIn:   int64(left / time.Second),
		fieldType:        role.Type,
		fieldAccountID:   role.AccountID,
	}, map[string]any{internalRole: name})
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = left
	resp.Secret.Renewable = false
	if res.warning != "" {
		resp.AddWarning(res.warning)
	}
	return resp, nil
}

// renewTokensInUse is the backend's periodic function (Vault calls it about once a minute):
// it renews tokens that are in use before reads need them.
func (b *backend) renewTokensInUse(ctx context.Context, req *logical.Request) error {
	st, err := b.getConfig(ctx, req.Storage)
	if err != nil || st == nil || st.config.NoBackgroundRefresh {
		return err
	}
	if n := b.tokens.renewReadTokens(ctx, req.Storage, st.credentials, st.fetch); n > 0 {
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
	return logical.CodedError(http.StatusBadGateway, msg)
}
