// Command noop-plugin is the floor for `make bench`: an external secrets plugin that does
// nothing. Its read of token/<name> returns a leased, non-renewable secret with the same fields
// and about the same size as a navercommerce token, so a read pays exactly what every external
// plugin read pays (the HTTP request, Vault's routing and policy check, the gRPC round trip to
// the plugin, the SDK's routing and field parsing, and the lease registration in Vault's
// storage) and nothing else: no storage, no calls back to Vault. Its read of leasefree/<name>
// returns the same data without a lease, the floor of a navercommerce role with lease=false:
// it writes nothing to Vault's storage.
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
	data := func() map[string]any {
		left := time.Until(expires).Truncate(time.Second)
		return map[string]any{
			"access_token": "noopNoopNoopNoopNoopNoopNoopNoopNoopNoopNoo", // 43 characters, as Naver's
			"token_type":   "Bearer",
			"expires_at":   expires.Format(time.RFC3339),
			"expires_in":   int64(left / time.Second),
			"type":         "SELLER",
			"account_id":   "bench-warm-account",
		}
	}
	// Callbacks rather than Operations skip the SDK's per-request replication-state round
	// trip: this plugin is the floor.
	b.Paths = []*framework.Path{
		{
			Pattern: "token/" + framework.GenericNameRegex("name"),
			Fields:  map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}},
			Callbacks: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					resp := b.Secret("noop_token").Response(data(), map[string]any{"role": d.Get("name")})
					resp.Secret.TTL = time.Until(expires).Truncate(time.Second)
					resp.Secret.Renewable = false
					return resp, nil
				},
			},
		},
		{
			Pattern: "leasefree/" + framework.GenericNameRegex("name"),
			Fields:  map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}},
			Callbacks: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					return &logical.Response{Data: data()}, nil
				},
			},
		},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
