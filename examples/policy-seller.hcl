# A tenant's policy on a many-seller role (one application, many sellers): the tenant may
# read the token of its own seller and nothing else: not another seller's token, not the
# role's bare path, not the engine's config or status. One policy per tenant; automation
# writes it when the seller is onboarded.
#   vault write navercommerce/roles/sellers type=SELLER allowed_account_ids='ncp_*'
#   vault policy write seller-ncp_abc examples/policy-seller.hcl
#   vault token create -policy=seller-ncp_abc
path "navercommerce/token/sellers/ncp_abc" {
  capabilities = ["read"]
}
