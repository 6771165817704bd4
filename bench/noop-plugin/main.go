// Command noop-plugin is the floor for `make bench`: an external secrets plugin that does
// nothing. Its read of token/<name> returns a leased, non-renewable secret with the same fields
// and about the same size as a navercommerce token, so a read pays exactly what every external
// plugin read pays (the HTTP request, Vault's routing and policy check, the gRPC round trip to
// the plugin, the SDK's routing and field parsing, and the lease registration in Vault's
// storage) and nothing else: no storage, no calls back to Vault. Its read of leasefree/<name>
// returns the same data without a lease, the floor of a navercommerce role with lease=false:
// it writes nothing to Vault's storage. token/<name>/<account_id> and leasefree/<name>/<account_id>
// are the same for one seller of a many-seller role (any name, any account: the account_id
// answered is the path's, so the answer has the size of the plugin's).
//
// The path uses Callbacks rather than Operations on purpose: with Operations the SDK asks Vault
// for the replication state on every request (a gRPC round trip back to Vault), which is not
// part of the floor.
package main

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"
)

// Version is what the bench registers the plugin under (RunningVersion must match it).
const Version = "v0.0.1"

func main() {
	meta := &api.PluginAPIClientMeta{}
	if err := meta.FlagSet().Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	}); err != nil {
		fatal(err)
	}
}

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	// Every token "expires" three hours after the mount started, like a fresh Naver token.
	expires := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	b := &framework.Backend{BackendType: logical.TypeLogical, RunningVersion: Version}
	b.Secrets = []*framework.Secret{{
		Type: "noop_token",
		Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
			return nil, nil
		},
	}}
	data := func(account string) map[string]any {
		left := time.Until(expires).Truncate(time.Second)
		return map[string]any{
			"access_token": "noopNoopNoopNoopNoopNoopNoopNoopNoopNoopNoo", // 43 characters, as Naver's
			"token_type":   "Bearer",
			"expires_at":   expires.Format(time.RFC3339),
			"expires_in":   int64(left / time.Second),
			"type":         "SELLER",
			"account_id":   account,
		}
	}
	// Callbacks rather than Operations skip the SDK's per-request replication-state round
	// trip: this plugin is the floor.
	leased := func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		resp := b.Secret("noop_token").Response(data(accountOf(d)), map[string]any{"role": d.Get("name")})
		resp.Secret.TTL = time.Until(expires).Truncate(time.Second)
		resp.Secret.Renewable = false
		return resp, nil
	}
	leaseFree := func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		return &logical.Response{Data: data(accountOf(d))}, nil
	}
	name := framework.GenericNameRegex("name")
	seller := name + "/" + framework.GenericNameRegex("account_id")
	fields := map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}, "account_id": {Type: framework.TypeString}}
	path := func(pattern string, read framework.OperationFunc) *framework.Path {
		return &framework.Path{Pattern: pattern, Fields: fields, Operations: map[logical.Operation]framework.OperationHandler{logical.ReadOperation: &framework.PathOperation{Callback: read}}}
	}
	b.Paths = []*framework.Path{
		path("token/"+name, leased),
		path("token/"+seller, leased),
		path("leasefree/"+name, leaseFree),
		path("leasefree/"+seller, leaseFree),
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// accountOf is the seller named in the path, or the single-account roles' account.
func accountOf(d *framework.FieldData) string {
	if a, ok := d.GetOk("account_id"); ok && a.(string) != "" {
		return a.(string)
	}
	return "bench-warm-account"
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
