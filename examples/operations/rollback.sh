#!/usr/bin/env bash
# Put a mount back on a version that is still registered (see upgrade.sh), with VAULT_ADDR
# and a VAULT_TOKEN that may tune and reload mounts.
#   TO_VERSION   the version to run, e.g. v0.1.0 (vault plugin list -detailed secret)
#   MOUNT        the mount (default navercommerce)
set -euo pipefail
plugin=vault-plugin-secrets-navercommerce
mount=${MOUNT:-navercommerce}

vault secrets tune -plugin-version="$TO_VERSION" "$mount/"
vault plugin reload -type=secret -plugin="$plugin"

running=$(vault read -field=version "$mount/info")
if [ "$running" != "$TO_VERSION" ]; then
  echo "rollback: $mount/ runs $running, not $TO_VERSION" >&2
  exit 1
fi
echo "$mount/ runs $TO_VERSION"
