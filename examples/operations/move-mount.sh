#!/usr/bin/env bash
# Move a mount to a new path, with VAULT_ADDR and a VAULT_TOKEN that may move mounts (and
# read the new path's status). Config, roles and cached tokens move with it: no request
# to Naver. Grant the new paths in policies first; apps, agents and monitoring use the new
# path from the moment of the move.
#   FROM, TO   the old and new paths, without a trailing slash
set -euo pipefail

vault secrets move "$FROM/" "$TO/"
vault read -format=json "$TO/status" | jq -r '.data | "\(.configured) cached_keys=\(.cached_keys)"'
