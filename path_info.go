package navercommerce

import (
	"context"
	"runtime"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathInfo(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "info",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathInfoRead,
				Summary:  "Show the running plugin's version.",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationSuffix: "plugin-info",
				},
				Responses: map[int][]framework.Response{
					200: {{Description: "OK", Fields: map[string]*framework.FieldSchema{
						"version":    {Type: framework.TypeString, Description: "Version of the running plugin."},
						"go_version": {Type: framework.TypeString, Description: "Go version the plugin was built with."},
					}}},
				},
			},
		},
		HelpSynopsis:    "Show which version of the plugin is running.",
		HelpDescription: "Returns the running plugin's version (the one it is registered under) and the Go version it was built with.",
	}
}

func (b *backend) pathInfoRead(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	return &logical.Response{Data: map[string]any{
		"version":    b.RunningVersion,
		"go_version": runtime.Version(),
	}}, nil
}
