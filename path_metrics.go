package navercommerce

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// STUB: the metrics work (issue 11) replaces this file with the Prometheus exposition.
func pathMetrics(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "metrics",
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
					return nil, nil
				},
			},
		},
		HelpSynopsis: "Prometheus metrics (not yet implemented).",
	}
}
