module github.com/navercommerce/vault-plugin-secrets-navercommerce

go 1.26.0

require golang.org/x/crypto v0.59.0
