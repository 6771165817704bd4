# An application's policy: it may read the token of its own role and nothing else of the
# engine (no config, no other roles, no writes).
#   vault policy write my-store-app examples/policy.hcl
#   vault token create -policy=my-store-app
path "navercommerce/token/my-store" {
  capabilities = ["read"]
}
