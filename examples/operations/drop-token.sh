#!/usr/bin/env bash
# Drop a role's cached token, only once Naver has refused it with 401 (say, after the
# seller re-authorised the application). A token Naver still accepts must not be dropped:
# the next read would ask Naver for a token it already handed out, a needless request
# Naver penalises. Needs VAULT_ADDR and a VAULT_TOKEN that may read and delete the role's
# token (an operator's, not an app's).
#   ROLE                     the role whose token apps say Naver refuses
#   MOUNT                    the mount (default navercommerce)
#   NAVER_COMMERCE_API_URL   default https://api.commerce.naver.com/external
set -euo pipefail
mount=${MOUNT:-navercommerce}
api_url=${NAVER_COMMERCE_API_URL:-https://api.commerce.naver.com/external}

# The token Vault serves now, tried once against the API (the token goes to curl on its
# standard input, not on its command line).
token=$(vault read -field=access_token "$mount/token/$ROLE")
status=$(printf 'header = "Authorization: Bearer %s"\n' "$token" |
  curl -sS -o /dev/null -w '%{http_code}' -K - "$api_url/v1/seller/account")
if [ "$status" != 401 ]; then
  echo "drop-token: Naver answered $status, not 401, to the token of $ROLE: not dropping it" >&2
  exit 1
fi

vault delete "$mount/token/$ROLE"
# The next read asks Naver for a new token.
vault read -format=json "$mount/status/$ROLE" | jq -r '.data | "\(.role): cached=\(.cached)"'
