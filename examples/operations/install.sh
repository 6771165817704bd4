#!/usr/bin/env bash
# Install the plugin and mount it. Run on the Vault server, with VAULT_ADDR and a VAULT_TOKEN
# that may register plugins and mount secrets engines.
#   NEW_BIN      the plugin binary, checked against SHA256SUMS
#   PLUGIN_DIR   the server's plugin_directory
#   MOUNT        where to mount it (default navercommerce)
set -euo pipefail
plugin=vault-plugin-secrets-navercommerce
mount=${MOUNT:-navercommerce}

# Every version gets its own file, named after the version the binary reports: a file
# Vault runs cannot be overwritten ("Text file busy"), and the old version must stay
# registered to roll back to.
version=$("$NEW_BIN" -version)
file=$plugin-$version
cmp -s "$NEW_BIN" "$PLUGIN_DIR/$file" || cp "$NEW_BIN" "$PLUGIN_DIR/$file"
chmod 0755 "$PLUGIN_DIR/$file"
sha256=$(sha256sum "$PLUGIN_DIR/$file" | cut -d' ' -f1)

vault plugin register -sha256="$sha256" -command="$file" -version="$version" secret "$plugin"
vault secrets enable -path="$mount" -plugin-version="$version" "$plugin"
vault read "$mount/info"
