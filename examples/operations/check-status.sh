#!/usr/bin/env bash
# A monitoring check of a mount (cron, Nagios/Icinga, a Kubernetes probe), with VAULT_ADDR
# and a VAULT_TOKEN of the operator policy (examples/policy-operator.hcl). One line per
# key; the exit status is the worst of them:
#   0 OK        the token is cached and its newest request, if any, succeeded; or no
#               role names the key (nobody reads it)
#   1 WARNING   requests to Naver are failing, but a valid token is still served
#   2 CRITICAL  no token, and the newest request failed: reads of the key fail
#   MOUNT   the mount (default navercommerce)
set -euo pipefail
mount=${MOUNT:-navercommerce}

vault read -format=json "$mount/status" keys=true limit=1000 | jq -r '
  def unread: (.roles // []) == [];
  def level: if unread or (.consecutive_failures // 0) == 0 then 0 elif .cached then 1 else 2 end;
  def account: if (.account_id // "") == "" then "-" else .account_id end;
  (.data.keys // [])[] |
  "\(level) \(["OK", "WARNING", "CRITICAL"][level]) \(.type) \(account) " +
  (if unread then "(no role names it)" else "(roles: \(.roles | join(",")))" end) + ": " +
  (if .cached then "expires \(.expires_at)" else "no token" end) +
  ", \(.requests_last_hour)/\(.request_budget_per_hour) requests in the last hour" +
  (if (.consecutive_failures // 0) > 0 then ", \(.consecutive_failures) failed, last: HTTP \(.last_error.status) \(.last_error.code // "-") trace \(.last_error.trace_id // "-")" else "" end)
' | {
  worst=0
  while read -r level line; do
    echo "$line"
    [ "$level" -gt "$worst" ] && worst=$level
  done
  exit "$worst"
}
