# The policy the operators' Kubernetes auth role gives: read the tokens of the application's
# two roles (leased for VSO's lease-timed re-reads, lease-free for timers), nothing else.
#   vault policy write navercommerce-my-store examples/kubernetes/policy.hcl
path "navercommerce/token/my-store" {
  capabilities = ["read"]
}

path "navercommerce/token/my-store-k8s" {
  capabilities = ["read"]
}
