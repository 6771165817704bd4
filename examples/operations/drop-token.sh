#!/usr/bin/env bash
# Drop a cached token, only once Naver has refused it with 401 (say, after the seller
# re-authorised the application). A token Naver still accepts must not be dropped: the next
# read would ask Naver for a token it already handed out, a needless request Naver
# penalises. Needs VAULT_ADDR and a VAULT_TOKEN that may read and delete the token and read
# its status (an operator's, not an app's).
#   ROLE                     the role whose token apps say Naver refuses
#   ACCOUNT_ID               on a many-seller role, the seller: drops token/ROLE/ACCOUNT_ID,
#                            that seller's token only (leave it empty for other roles)
#   MOUNT                    the mount (default navercommerce)
#   NAVER_COMMERCE_API_URL   default https://api.commerce.naver.com/external
set -euo pipefail
mount=${MOUNT:-navercommerce}
api_url=${NAVER_COMMERCE_API_URL:-https://api.commerce.naver.com/external}
# One name each: the CLI would resolve "a/b", "." or ".." in a path to another path.
for name in "${ROLE:?set ROLE to the role}" ${ACCOUNT_ID:+"$ACCOUNT_ID"}; do
  case $name in */* | . | ..)
    echo "drop-token: \"$name\" is not one name: give the role as ROLE and a seller as ACCOUNT_ID" >&2
    exit 2 ;;
  esac
done
path=$ROLE${ACCOUNT_ID:+/$ACCOUNT_ID}

# The token Vault serves now, tried once against the API (the token goes to curl on its
# standard input, not on its command line), and whose it is, as Vault says.
secret=$(vault read -format=json "$mount/token/$path")
key=$(printf '%s' "$secret" | jq -r --arg role "$ROLE" \
  '.data | "role \($role), \(.type) account \(if (.account_id // "") == "" then "-" else .account_id end)"')
header=$(printf '%s' "$secret" |
  jq -er '.data.access_token | select(. != null and . != "") | "header = \"Authorization: Bearer \(.)\""')
status=$(printf '%s\n' "$header" | curl -sS -o /dev/null -w '%{http_code}' -K - "$api_url/v1/seller/account")
if [ "$status" != 401 ]; then
  echo "drop-token: Naver answered $status, not 401, to the token of $key: not dropping it" >&2
  exit 1
fi

vault delete "$mount/token/$path"
# The next read asks Naver for a new token.
vault read -format=json "$mount/status/$path" |
  jq -r '.data | "dropped: role \(.role), \(.type) account \(if (.account_id // "") == "" then "-" else .account_id end): cached=\(.cached)"'
