#!/usr/bin/env bash
# Rename a role in two steps, with VAULT_ADDR and a VAULT_TOKEN that may read, list, write and
# delete roles. Roles naming the same type and account (or sellers) share cached tokens, so
# neither step asks Naver anything. The role's whole definition moves: every field that
# `vault read MOUNT/roles/FROM` shows, as it shows it (lists stay lists, empty or not), so
# fields a later version adds move too.
#   move-role.sh copy FROM TO     create TO with FROM's definition; then grant
#                                 MOUNT/token/TO (or MOUNT/token/TO/<account_id>) in policies
#                                 and move apps and agents to it. TO may exist only with the
#                                 same definition (a second run changes nothing).
#   move-role.sh retire FROM TO   delete FROM, once nothing reads it, and only while TO has
#                                 FROM's whole definition
#   MOUNT   the mount (default navercommerce)
set -euo pipefail
mount=${MOUNT:-navercommerce}
if [ $# -ne 3 ] || [ "$2" = "$3" ]; then
  echo "usage: move-role.sh copy|retire FROM TO (two different roles)" >&2
  exit 2
fi
step=$1 from=$2 to=$3

definition() { # ROLE: every field of its definition, as sorted JSON; fails if there is none
  local role
  role=$(vault read -format=json "$mount/roles/$1") || {
    echo "move-role: cannot read role $1 (above: Vault's answer)" >&2
    return 1
  }
  printf '%s' "$role" | jq -S '.data'
}

exists() { # ROLE: whether the mount has it (a failure to list is an error, not a no)
  local roles
  roles=$(vault list -format=json "$mount/roles") || return 2
  printf '%s' "$roles" | jq -e --arg name "$1" 'any(.[]; . == $name)' >/dev/null
}

differences() { # DEF_A DEF_B NAME_A NAME_B: one line per field that differs
  jq -nr --argjson a "$1" --argjson b "$2" --arg na "$3" --arg nb "$4" \
    '($a + $b | keys[]) as $k | select($a[$k] != $b[$k]) |
     "  \($k): \($a[$k] | tojson) in \($na), \($b[$k] | tojson) in \($nb)"'
}

case $step in
  copy)
    source_def=$(definition "$from")
    status=0
    exists "$to" || status=$?
    case $status in
      0)
        target_def=$(definition "$to")
        if [ "$target_def" = "$source_def" ]; then
          echo "move-role: $to already has $from's definition; nothing to do"
          exit 0
        fi
        echo "move-role: $to exists with another definition; not overwriting it:" >&2
        differences "$source_def" "$target_def" "$from" "$to" >&2
        exit 1
        ;;
      1) ;;
      *) echo "move-role: cannot list the roles of $mount (above: Vault's answer)" >&2; exit 1 ;;
    esac
    # JSON on standard input: every field with its type, and no value read as @file.
    printf '%s' "$source_def" | vault write "$mount/roles/$to" -
    target_def=$(definition "$to")
    if [ "$target_def" != "$source_def" ]; then
      echo "move-role: $to was written but does not read back as $from; fix or delete $to:" >&2
      differences "$source_def" "$target_def" "$from" "$to" >&2
      exit 1
    fi
    echo "move-role: $to has $from's definition"
    ;;
  retire)
    source_def=$(definition "$from")
    target_def=$(definition "$to")
    if [ "$target_def" != "$source_def" ]; then
      echo "move-role: $to does not have $from's definition; not deleting $from:" >&2
      differences "$source_def" "$target_def" "$from" "$to" >&2
      exit 1
    fi
    vault delete "$mount/roles/$from"
    echo "move-role: deleted $from; $to serves its tokens"
    ;;
  *)
    echo "usage: move-role.sh copy|retire FROM TO (two different roles)" >&2
    exit 2
    ;;
esac
