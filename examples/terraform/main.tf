# Mount and configure the engine with Terraform's Vault provider. The plugin must already be
# registered (vault plugin register -sha256=... -version=...).
#
# Apply is idempotent: the engine keeps client_secret write-only, so the provider is told to
# ignore fields a read does not return, and verify_connection (an action, not a setting) is
# left out.

variable "naver_client_id" { type = string }
variable "naver_client_secret" {
  type      = string
  sensitive = true
}
variable "plugin_version" { type = string }

resource "vault_mount" "navercommerce" {
  path           = "navercommerce"
  type           = "vault-plugin-secrets-navercommerce"
  plugin_version = var.plugin_version
  description    = "Naver Commerce API tokens"
}

resource "vault_generic_endpoint" "config" {
  path                 = "${vault_mount.navercommerce.path}/config"
  ignore_absent_fields = true
  data_json = jsonencode({
    client_id     = var.naver_client_id
    client_secret = var.naver_client_secret
  })
}

resource "vault_generic_endpoint" "role_my_store" {
  depends_on           = [vault_generic_endpoint.config]
  path                 = "${vault_mount.navercommerce.path}/roles/my-store"
  ignore_absent_fields = true
  data_json = jsonencode({
    type       = "SELLER"
    account_id = "ncp_2sRZTWJVbDtHPoz9OXXXX"
  })
}

resource "vault_policy" "my_store_app" {
  name   = "my-store-app"
  policy = file("${path.module}/../policy.hcl")
}
