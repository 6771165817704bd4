#!/usr/bin/env bash
# Put a re-issued client secret into Vault, the moment after it was re-issued in the
# 커머스API센터 (which kills the old secret and every token made with it at once), with
# VAULT_ADDR and a VAULT_TOKEN that may write the mount's config and read its status.
#   NEW_SECRET_FILE   a file holding the new secret (removed once Vault has it)
#   MOUNT             the mount (default navercommerce)
#   AGENT_SERVICE     the systemd unit of a Vault Agent on this host rendering the mount's
#                     tokens, restarted at the end; empty: none here
set -euo pipefail
mount=${MOUNT:-navercommerce}

# 1. Store it. Vault first asks Naver for a SELF token with the new secret
#    (verify_connection): if Naver refuses, the write fails with Naver's reason and the old
#    config stays. Stored, it drops every token cached with the old secret.
vault write "$mount/config" client_secret=@"$NEW_SECRET_FILE"
rm -f "$NEW_SECRET_FILE"

# 2. Apps reading Vault get a new token on their next read; the examples read again at once
#    when the API answers 401. Vault Agent does not: it keeps the token it rendered until
#    ~90% of its lease (hours). Revoking leases or SIGHUP does not make it read again;
#    a restart does.
if [ -n "${AGENT_SERVICE:-}" ]; then
  systemctl restart "$AGENT_SERVICE"
fi

# 3. Each key: cached, since when, and its last failure if the newest request failed.
vault read -format=json "$mount/status" keys=true limit=1000 | jq -r '.data.keys[]? |
  [.type, (if (.account_id // "") == "" then "-" else .account_id end), "cached=\(.cached)", (.fetched_at // "-"),
   (if (.consecutive_failures // 0) > 0 then "FAILING \(.last_error.code) trace \(.last_error.trace_id)" else "ok" end)] | @tsv'
