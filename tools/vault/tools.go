//go:build tools

// Package vaulttool pins the Vault server that scripts/install-vault.sh builds for
// the demo and the acceptance tests. It is its own module so the plugin's go.mod
// does not carry Vault's server dependencies.
package vaulttool

import _ "github.com/hashicorp/vault"
