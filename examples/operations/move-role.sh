#!/usr/bin/env bash
# Rename a role in two steps, with VAULT_ADDR and a VAULT_TOKEN that may read, write and
# delete roles. Roles naming the same type and account share one cached token, so neither
# step asks Naver anything.
#   move-role.sh copy FROM TO     create TO with FROM's settings; then grant
#                                 MOUNT/token/TO in policies and move apps and agents to it
#   move-role.sh retire FROM TO   delete FROM, once nothing reads it (TO must still match it)
#   MOUNT   the mount (default navercommerce)
set -euo pipefail
mount=${MOUNT:-navercommerce}
step=$1 from=$2 to=$3

settings() { # ROLE: its settings as key=value lines
  vault read -format=json "$mount/roles/$1" |
    jq -r '.data | "type=\(.type)", "account_id=\(.account_id // "")", "ttl=\(.ttl)", "lease=\(.lease)"'
}

case $step in
  copy)
    mapfile -t fields < <(settings "$from")
    vault write "$mount/roles/$to" "${fields[@]}"
    ;;
  retire)
    if [ "$(settings "$from")" != "$(settings "$to")" ]; then
      echo "move-role: $to does not have $from's settings; not deleting $from" >&2
      exit 1
    fi
    vault delete "$mount/roles/$from"
    ;;
  *)
    echo "usage: move-role.sh copy|retire FROM TO" >&2
    exit 2
    ;;
esac
