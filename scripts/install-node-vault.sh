#!/usr/bin/env bash
# Installs examples/node's dependencies (node-vault) with `npm ci` from the committed
# package-lock.json and prints the example's directory. Idempotent: node_modules/ carries the
# SHA-256 of the lock it was installed from, and npm ci runs again only when the lock changes.
# --prefer-offline takes packages from npm's own cache (~/.npm) when it has them.
# Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/examples/node"
stamp="$dir/node_modules/.installed-from-lock.sha256"
log() { printf 'install-node-vault: %s\n' "$*" >&2; }

command -v npm >/dev/null || { log "npm is not on PATH: install Node.js 18 or later"; exit 1; }
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
installed() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$dir/node_modules/node-vault" ]; }

if installed; then
  echo "$dir"; exit 0
fi

# One npm ci at a time: two would remove each other's node_modules.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-navercommerce"
mkdir -p "$cache"
exec 9>"$cache/npm-examples-node.lock"
flock -w 600 9 || { log "timed out waiting for $cache/npm-examples-node.lock"; exit 1; }
if installed; then
  echo "$dir"; exit 0
fi

log "npm ci in examples/node"
(cd "$dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >&2
echo "$want" >"$stamp"
echo "$dir"
