#!/usr/bin/env bash
# A monitoring check of a mount (cron, Nagios/Icinga, a Kubernetes probe), with VAULT_ADDR
# and a VAULT_TOKEN of the operator policy (examples/policy-operator.hcl). One line per
# key; the exit status is the worst of them:
#   0 OK        the token is cached and its newest request, if any, succeeded
#   1 WARNING   requests to Naver are failing, but a valid token is still served
#   2 CRITICAL  no token: reads of the key fail (the newest request failed, or the
#               hourly budget is spent)
#   MOUNT   the mount (default navercommerce)
set -euo pipefail
mount=${MOUNT:-navercommerce}

vault read -format=json "$mount/status" | jq -r '
  def level: if (.consecutive_failures // 0) == 0 then 0 elif .cached then 1 else 2 end;
  def name: "\(.type) \(.account_id // "-") (roles: \((.roles // []) | join(",")))";
  (.data.keys // [])[] |
  "\(level) \(["OK", "WARNING", "CRITICAL"][level]) \(name): " +
  (if .cached then "expires \(.expires_at)" else "no token" end) +
  ", \(.requests_last_hour)/\(.request_budget_per_hour) requests in the last hour" +
  (if level > 0 then ", \(.consecutive_failures) failed, last: HTTP \(.last_error.status) \(.last_error.code // "") trace \(.last_error.trace_id // "-")" else "" end)
' | {
  worst=0
  while read -r level line; do
    echo "$line"
    [ "$level" -gt "$worst" ] && worst=$level
  done
  exit "$worst"
}
