# The administrator's policy for the engine mounted at navercommerce/: install, upgrade and
# roll back the plugin, write config (the client secret) and roles, drop a token Naver
# refused, and everything the operator sees. Grant it to the few people who rotate the
# client secret, never to applications (examples/policy.hcl) or monitoring
# (examples/policy-operator.hcl). The recipes in examples/operations/ run with it, except
# moving a mount (sys/remount, and these paths for the new mount).
#   vault policy write navercommerce-admin examples/policy-admin.hcl

# Register versions of the plugin, list and remove them, and reload mounts onto them (Vault
# asks for sudo on the plugin catalog and on reloads).
path "sys/plugins/catalog/secret/vault-plugin-secrets-navercommerce" {
  capabilities = ["create", "read", "update", "delete", "sudo"]
}

path "sys/plugins/reload/secret/vault-plugin-secrets-navercommerce" {
  capabilities = ["update", "sudo"]
}

# Mount the engine and switch it to a registered version (secrets tune -plugin-version).
path "sys/mounts/navercommerce" {
  capabilities = ["create", "read", "update"]
}

path "sys/mounts/navercommerce/tune" {
  capabilities = ["read", "update"]
}

# The engine: config (write-only client secret), roles, and the running version.
path "navercommerce/config" {
  capabilities = ["create", "read", "update", "delete"]
}

path "navercommerce/roles" {
  capabilities = ["list"]
}

path "navercommerce/roles/*" {
  capabilities = ["create", "read", "update", "delete"]
}

path "navercommerce/info" {
  capabilities = ["read"]
}

# Try a role's token against Naver's API, and drop it once Naver refused it (401).
path "navercommerce/token/*" {
  capabilities = ["read", "delete"]
}

# What the operator sees.
path "navercommerce/status" {
  capabilities = ["read"]
}

path "navercommerce/status/*" {
  capabilities = ["read"]
}

path "navercommerce/metrics" {
  capabilities = ["read"]
}
