#!/usr/bin/env bash
# Upgrade a mount to a new version, beside the old one. Run on the Vault server, with
# VAULT_ADDR and a VAULT_TOKEN that may register plugins and tune and reload mounts.
#   NEW_BIN      the new plugin binary, checked against SHA256SUMS
#   PLUGIN_DIR   the server's plugin_directory
#   MOUNT        the mount to upgrade (default navercommerce)
set -euo pipefail
plugin=vault-plugin-secrets-navercommerce
mount=${MOUNT:-navercommerce}

old_version=$(vault read -field=version "$mount/info")
new_version=$("$NEW_BIN" -version)
file=$plugin-$new_version
cmp -s "$NEW_BIN" "$PLUGIN_DIR/$file" || cp "$NEW_BIN" "$PLUGIN_DIR/$file"
chmod 0755 "$PLUGIN_DIR/$file"
sha256=$(sha256sum "$PLUGIN_DIR/$file" | cut -d' ' -f1)

vault plugin register -sha256="$sha256" -command="$file" -version="$new_version" secret "$plugin"
vault secrets tune -plugin-version="$new_version" "$mount/"
# Until the reload the old process keeps serving. The reload restarts every mount of the
# plugin, each on its own version; the new process reads config, roles and cached tokens
# from Vault's storage, so the upgrade asks Naver nothing.
vault plugin reload -type=secret -plugin="$plugin"

running=$(vault read -field=version "$mount/info")
if [ "$running" != "$new_version" ]; then
  echo "upgrade: $mount/ runs $running, not $new_version" >&2
  exit 1
fi
echo "upgraded $mount/ from $old_version to $new_version"
echo "to roll back: TO_VERSION=$old_version MOUNT=$mount examples/operations/rollback.sh"
