#!/usr/bin/env bash
# A monitoring check (cron, Nagios/Icinga, a Kubernetes probe) of a mount, a role or one
# seller, with VAULT_ADDR and a VAULT_TOKEN of the operator policy
# (examples/policy-operator.hcl). The first line sums up; then one line per key, naming its
# type, account and the roles that read it. The exit status is the most severe verdict:
#   0 OK        the token is cached and its newest request, if any, succeeded; or no
#               role names the key (nobody reads it)
#   1 WARNING   requests to Naver are failing, but a valid token is still served; or Naver
#               refused a seller's account as not authorised (a typo, or a seller who left:
#               not an outage, a seller to look into)
#   2 CRITICAL  no token, and the newest request failed: reads of the key fail
#   3 UNKNOWN   the status could not be read, it says it does not know everything yet
#               (right after a start whose storage reads failed), or a key is in a state
#               this check does not know
#   MOUNT        the mount (default navercommerce)
#   ROLE         only the keys this role names (on a many-seller role: all its sellers)
#   ACCOUNT_ID   with ROLE, a many-seller role's one seller (status/ROLE/ACCOUNT_ID)
#   PAGE_SIZE    keys per status read, 1-1000 (default 1000); every page is read
set -euo pipefail
mount=${MOUNT:-navercommerce}
role=${ROLE:-} account=${ACCOUNT_ID:-} page_size=${PAGE_SIZE:-1000}
scope="mount $mount${role:+, role $role}${account:+, account $account}"

unknown() { echo "UNKNOWN: $*"; exit 3; }
[ -z "$account" ] || [ -n "$role" ] || unknown "ACCOUNT_ID needs ROLE (the many-seller role that reads it)"
for name in "$role" "$account"; do # one name each: the CLI would resolve "a/b", "." or ".." to another path
  case $name in */* | . | ..) unknown "\"$name\" is not one name: give the role as ROLE and a seller as ACCOUNT_ID" ;; esac
done

keys() { # the keys in scope, one JSON object a line (returns at the first failure)
  # An answer that says it does not know everything yields a key of state "incomplete".
  local incomplete='if .data.knowledge_complete == false then {state: "incomplete", type: "-", roles: ["-"], why: (.warnings // [] | join("; "))} else empty end'
  if [ -n "$account" ]; then
    vault read -format=json "$mount/status/$role/$account" | jq -c "($incomplete), .data"
    return
  fi
  local after="" page
  while :; do
    page=$(vault read -format=json "$mount/status" keys=true limit="$page_size" \
      ${role:+"role=$role"} ${after:+"after=$after"}) || return
    printf '%s' "$page" | jq -c "($incomplete), .data.keys[]?" || return
    after=$(printf '%s' "$page" | jq -r '.data.next_after // ""') || return
    [ -n "$after" ] || return 0
  done
}

# Vault's error goes to standard error as it is, and its gist onto the UNKNOWN line (which
# is what a monitoring system shows).
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
all=$(keys 2>"$errors") || {
  cat "$errors" >&2
  unknown "cannot read the status of $scope: $(grep -v '^[[:space:]]*$' "$errors" | tail -n 1 | sed 's/^\* //')"
}

printf '%s\n' "$all" | jq -rs --arg scope "$scope" --arg mount "$mount" '
  # The verdict on a key. The one place that maps status to verdicts: a new key state goes
  # into this table. A state not in it is UNKNOWN, never OK.
  def unread: (.roles // []) == [];
  def verdict:
    if unread then "OK"
    else {"cached": "OK", "idle": "OK", "stale": "WARNING", "refused": "WARNING", "failing": "CRITICAL"}[.state // ""] // "UNKNOWN"
    end;
  def severity: {"OK": 0, "UNKNOWN": 1, "WARNING": 2, "CRITICAL": 3}[.];
  def account: if (.account_id // "") == "" then "-" else .account_id end;
  def line:
    if .state == "incomplete" then "UNKNOWN status does not know everything yet: \(.why)"
    elif .state == "refused" then
      "WARNING \(.type) \(account) (roles: \(.roles | join(","))): Naver refused the account as not authorised; reads fail until \(.refused_until) (\(.refused_reason)). If the account is right and the seller authorised the application again, make the next read ask Naver at once: vault delete \($mount)/token/\(.roles[0])/\(.account_id)"
    else
    "\(verdict) \(.type) \(account) " +
    (if verdict == "UNKNOWN" then "(state \(.state // "none" | tojson)) " else "" end) +
    (if unread then "(no role names it)" else "(roles: \(.roles | join(",")))" end) + ": " +
    (if .cached then "expires \(.expires_at)" else "no token" end) +
    ", \(.requests_last_hour)/\(.request_budget_per_hour) requests in the last hour" +
    (if (.consecutive_failures // 0) > 0 then ", \(.consecutive_failures) failed, last: HTTP \(.last_error.status) \(.last_error.code // "-") trace \(.last_error.trace_id // "-")" else "" end)
    end;
  map(. + {verdict: verdict}) as $keys |
  ($keys | map(.verdict) | max_by(severity) // "OK") as $worst |
  ($keys | group_by(.verdict) | sort_by(-(.[0].verdict | severity)) | map("\(length) \(.[0].verdict)") | join(", ")) as $counts |
  $worst,
  "\($worst): \(if $keys == [] then "no key known" else "\($keys | length) key(s): \($counts)" end) (\($scope))",
  ($keys[] | line)
' | {
  read -r worst
  cat
  case $worst in OK) exit 0 ;; WARNING) exit 1 ;; CRITICAL) exit 2 ;; *) exit 3 ;; esac
}
