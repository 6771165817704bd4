module github.com/navercommerce/vault-plugin-secrets-navercommerce/tools/vault

go 1.26

require github.com/hashicorp/vault v1.21.0
