# An operator's policy: see which tokens are cached, when they expire and why requests to
# Naver fail (status), and scrape the metrics (Prometheus's token needs only the metrics
# path). Neither path shows a token or the client secret, but they do show account IDs and
# roles: do not grant them to applications, whose policy is examples/policy.hcl.
#   vault policy write navercommerce-operator examples/policy-operator.hcl
#   vault token create -policy=navercommerce-operator
path "navercommerce/status" {
  capabilities = ["read"]
}

path "navercommerce/status/*" {
  capabilities = ["read"]
}

path "navercommerce/metrics" {
  capabilities = ["read"]
}
