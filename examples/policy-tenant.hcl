# One policy for every tenant of a many-seller role (navercommerce/roles/sellers): a tenant's
# app reads the token of its own seller and nothing else. Vault fills in the seller's account
# ID from the identity entity the app logged in as (its metadata naver_account_id) on every
# request, so onboarding a tenant is an entity write, not a policy write.
#   vault policy write navercommerce-tenant examples/policy-tenant.hcl
#   vault write identity/entity name=tenant-ncp_abc policies=navercommerce-tenant \
#       metadata=naver_account_id=ncp_abc
# and an alias of that entity for the app's login (README.md, "Tenants by identity").
#
# An entity without naver_account_id, or with an empty one, gets nothing from this policy.
# Vault uses the value as written: `*` at its end or `+` in it are policy wildcards (`*` alone
# grants every seller; OpenBao leaves such a path out). So only the onboarding automation
# writes it, one account ID, checked; tenants never get write access to identity/.
path "navercommerce/token/sellers/{{identity.entity.metadata.naver_account_id}}" {
  capabilities = ["read"]
}
