package navercommerce

import "github.com/hashicorp/vault/sdk/framework"

// STUB: the status work (issue 11) replaces this file with "status" and "status/<role>".
func pathStatus(b *backend) []*framework.Path { return nil }
