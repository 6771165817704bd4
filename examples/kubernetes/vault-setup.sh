#!/usr/bin/env bash
# What Vault (or OpenBao: the same commands with `bao`) needs before the operators in this
# directory can read tokens: two roles of the engine, the policy that reads them, and a
# Kubernetes auth role that gives that policy to the application's service account.
#   VAULT_ADDR=https://vault.example.com:8200 VAULT_TOKEN=... examples/kubernetes/vault-setup.sh
# Assumes the engine is enabled at navercommerce/ and configured (README: "Install and register").
set -euo pipefail
cd "$(dirname "$0")"
account_id=${ACCOUNT_ID:-ncp_2sRZTWJVbDtHPoz9OXXXX}

# Leased: for VSO's VaultDynamicSecret, which re-reads at renewalPercent of the lease.
vault write navercommerce/roles/my-store type=SELLER account_id="$account_id"
# Lease-free, for consumers that re-read on a timer (ESO's refreshInterval, VSO's refreshAfter):
# a read never returns a token with less than 20 minutes left, so a timer of 15 minutes
# (plus 5 minutes for retries) never leaves a dead token in the Secret.
vault write navercommerce/roles/my-store-k8s type=SELLER account_id="$account_id" lease=false min_remaining_ttl=20m

vault policy write navercommerce-my-store policy.hcl

# Kubernetes auth: the service account my-store-app in namespace shop gets the policy. Run
# where Vault can reach the cluster's API; with Vault inside the cluster, kubernetes_host is
# https://kubernetes.default.svc and the reviewer JWT and CA come from Vault's own pod.
vault auth list -format=json | grep -q '"kubernetes/"' || vault auth enable kubernetes
vault write auth/kubernetes/config kubernetes_host="${KUBERNETES_HOST:-https://kubernetes.default.svc}"
vault write auth/kubernetes/role/navercommerce-my-store \
  bound_service_account_names=my-store-app \
  bound_service_account_namespaces=shop \
  audience=vault \
  token_policies=navercommerce-my-store \
  token_ttl=20m token_max_ttl=1h
