#!/usr/bin/env bash
# Prints the path of a vault binary of the pinned version, building it if needed.
#
# Order: $VAULT_BIN if set; `vault` on PATH if it is the pinned version; the cached build
# under ${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-navercommerce; otherwise build
# Vault from its Go module (first build: ~4 GB of modules and 20-40 minutes on 2 cores) and
# cache the binary there. Progress goes to stderr; only the path goes to stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=/dev/null
. "$here/tools/vault/versions.env"

log() { printf 'install-vault: %s\n' "$*" >&2; }

is_pinned() {
  local v
  v=$("$1" version 2>/dev/null | head -n1) || return 1
  # "Vault v1.21.0, built 2025-..." or "Vault v1.21.0 (rev)"; a prerelease like v1.21.0-rc1 is not it.
  case "$v" in "Vault v${VAULT_VERSION}"|"Vault v${VAULT_VERSION}"[\ ,]*) return 0 ;; esac
  return 1
}

if [ -n "${VAULT_BIN:-}" ]; then
  is_pinned "$VAULT_BIN" || { log "VAULT_BIN=$VAULT_BIN is not Vault v$VAULT_VERSION"; exit 1; }
  echo "$VAULT_BIN"; exit 0
fi

if p=$(command -v vault 2>/dev/null) && is_pinned "$p"; then
  echo "$p"; exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-navercommerce/vault-${VAULT_VERSION}"
bin="$cache/vault"
if [ -x "$bin" ] && is_pinned "$bin"; then
  echo "$bin"; exit 0
fi

mkdir -p "$cache"
# One build at a time, even when make targets run in parallel.
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "another build of Vault v$VAULT_VERSION is under way (it holds $cache/.lock); waiting for it to finish"
  flock 9
fi
if [ -x "$bin" ] && is_pinned "$bin"; then
  echo "$bin"; exit 0
fi

work="$cache/src"
rm -rf "$work"; mkdir -p "$work"
cp "$here/tools/vault/go.mod" "$here/tools/vault/tools.go" "$work/"
sed -i "s|github.com/hashicorp/vault v.*|github.com/hashicorp/vault v${VAULT_VERSION}|" "$work/go.mod"
cd "$work"
start=$(date +%s)
log "building Vault v$VAULT_VERSION from its Go module into $cache"
log "first time only: downloads ~4 GB of modules and compiles for 20-40 minutes on 2 cores"
log "step 1/2: resolving modules (go mod tidy -e)"
# -e: test-only imports inside the Vault tree do not resolve and are not needed.
GOFLAGS=-mod=mod go mod tidy -e >"$cache/tidy.log" 2>&1 || { tail -n 30 "$cache/tidy.log" >&2; exit 1; }
log "step 2/2: compiling (go build), $(( $(date +%s) - start ))s so far"
(
  while sleep 60; do log "still compiling... $(( $(date +%s) - start ))s"; done
) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
ldflags="-X github.com/hashicorp/vault/version.Version=${VAULT_VERSION} -X github.com/hashicorp/vault/version.VersionPrerelease="
if ! CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" github.com/hashicorp/vault >"$cache/build.log" 2>&1; then
  tail -n 30 "$cache/build.log" >&2; exit 1
fi
mv "$bin.tmp" "$bin"
is_pinned "$bin" || { log "built $bin but '$bin version' says: $("$bin" version 2>&1 | head -n1)"; exit 1; }
log "built $("$bin" version | head -n1) in $(( $(date +%s) - start ))s"
echo "$bin"
