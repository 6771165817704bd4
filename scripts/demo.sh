#!/usr/bin/env bash
# The demo behind `make demo` / `make demo-stop`: the Naver emulator, a dev Vault with the
# plugin registered by SHA-256 under its version, and a Vault Agent rendering a token into a
# file, all on 127.0.0.1 and running in the background. State, pid files and logs: .demo/
#
#   scripts/demo.sh start    (env: VAULT_BIN, PLUGIN_VERSION; DEMO_VAULT_PORT=8200 (and +1 for Vault's
#                             cluster port), DEMO_EMULATOR_PORT=9443; PLUGIN_BIN and EMULATOR_BIN
#                             default to bin/ as built by `make build`)
#   scripts/demo.sh stop     (safe to run twice)
#   scripts/demo.sh status
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo="$here/.demo"
plugin_name=vault-plugin-secrets-navercommerce
plugin_bin=${PLUGIN_BIN:-$here/bin/$plugin_name}
emulator_bin=${EMULATOR_BIN:-$here/bin/navercommerce-emulator}

vault_port=${DEMO_VAULT_PORT:-8200}
emulator_port=${DEMO_EMULATOR_PORT:-9443}
vault_addr="http://127.0.0.1:$vault_port"
root_token=demo-root-token
# The emulator's one application. The secret is a bcrypt salt, like Naver's; it is a demo
# value known to the emulator only, so it is shown freely.
client_id=naverDemoClientId01
client_secret='$2a$04$NaverCommerceDemo1234u'
seller_account=ncp_demo_seller
# The sellers that authorised the demo application: the emulator refuses any other account_id,
# as Naver does, so a typo in a role's account_id fails here too.
known_sellers="$seller_account,ncp_demo_seller2"
app_policy=my-store-app

say() { printf '==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# running NAME: the pid in .demo/NAME.pid is alive and is the program we started.
running() {
  local pidfile="$demo/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # A recycled pid belongs to something else: check the command line.
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "$2"
}

stop_one() { # NAME MATCH
  local pidfile="$demo/$1.pid" pid i
  if running "$1" "$2"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "$1 (pid $pid) did not stop within 10s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $1 (pid $pid)"
  else
    say "$1 is not running"
  fi
  rm -f "$pidfile"
}

stop() {
  stop_one agent "vault agent"
  stop_one vault "vault server"
  stop_one emulator "navercommerce-emulator"
}

# port_taken PORT: something accepts connections on 127.0.0.1:PORT.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# background NAME LOG CMD...: start CMD detached from this shell, remember its pid. It stays
# this shell's child, so `wait` can tell how it ended.
background() {
  local name=$1 log=$2
  shift 2
  setsid "$@" >"$log" 2>&1 </dev/null &
  echo $! >"$demo/$name.pid"
}

# how_it_ended NAME: sets `ended` to how the background process NAME ended, from its exit
# status. Not in $(...): a subshell cannot wait for this shell's children.
how_it_ended() {
  local pid status=0
  ended="ended"
  pid=$(cat "$demo/$1.pid" 2>/dev/null) || return 0
  wait "$pid" 2>"$demo/wait.err" || status=$?
  if [ -s "$demo/wait.err" ]; then
    ended="ended (pid $pid; its exit status is unknown: $(cat "$demo/wait.err"))"
  elif [ "$status" -gt 128 ]; then
    ended="was killed by signal $((status - 128)) (SIG$(kill -l $((status - 128)) 2>/dev/null || echo '?')) (pid $pid)"
  else
    ended="exited with status $status (pid $pid)"
  fi
  rm -f "$demo/wait.err"
}

# what NAME: the binary and the address of the process NAME, for error messages.
what() {
  case $1 in
    emulator) echo "the emulator ($emulator_bin, port 127.0.0.1:$emulator_port from DEMO_EMULATOR_PORT)" ;;
    vault) echo "Vault (${vault:-vault} server -dev, ports 127.0.0.1:$vault_port and :$((vault_port + 1)) from DEMO_VAULT_PORT)" ;;
    agent) echo "Vault Agent (${vault:-vault} agent)" ;;
  esac
}

fail_start() {
  printf '\ndemo: %s\n' "$1" >&2
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    printf -- '--- last lines of %s:\n' "${2#"$here"/}" >&2
    tail -n 25 "$2" >&2
  fi
  printf 'demo: stopping what was started\n' >&2
  stop >&2
  exit 1
}

# wait_until SECONDS NAME LOG CMD...: poll CMD until it succeeds, while NAME keeps running.
wait_until() {
  local secs=$1 name=$2 log=$3 match
  shift 3
  case $name in
    emulator) match=navercommerce-emulator ;;
    vault) match="vault server" ;;
    agent) match="vault agent" ;;
  esac
  for _ in $(seq 1 $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! running "$name" "$match"; then
      how_it_ended "$name"
      if [ ! -s "$log" ]; then
        ended="$ended, and its log is empty: it ended before it wrote a line"
      fi
      fail_start "$(what "$name") $ended" "$log"
    fi
    sleep 0.1
  done
  fail_start "$(what "$name") was not ready within ${secs}s" "$log"
}

summary() {
  local emulator_url path_hint=""
  vault=${vault:-${VAULT_BIN:-}}
  if [ -n "$vault" ] && [ "$(command -v vault 2>/dev/null)" != "$vault" ]; then
    path_hint="  export PATH=\"$(dirname "$vault"):\$PATH\"   # the pinned vault binary
"
  fi
  emulator_url=$(cat "$demo/emulator.url" 2>/dev/null || echo "http://127.0.0.1:$emulator_port/external")
  cat <<EOF

The demo is running (everything on 127.0.0.1; state, pid files and logs in .demo/):
  Naver emulator  $emulator_url   (.demo/emulator.log)
  Vault (dev)     $vault_addr   with navercommerce/ mounted   (.demo/vault.log)
  Vault Agent     renders navercommerce/token/my-store into .demo/token.txt   (.demo/agent.log)

Use it:
${path_hint}  export VAULT_ADDR=$vault_addr VAULT_TOKEN=$root_token
  vault read navercommerce/token/my-app
  vault read -format=json navercommerce/token/my-store
  vault read -format=yaml navercommerce/status keys=true
  curl -H "Authorization: Bearer \$(cat .demo/token.txt)" $emulator_url/v1/seller/account

The emulator knows the sellers $known_sellers (any other account_id is refused, as by Naver);
its admin API is at ${emulator_url%/external}/_emulator/ (README: "The demo's ports and the emulator's admin API").

Run the example apps against the demo, from the repository root. They use a Vault token of
examples/policy.hcl (it may read navercommerce/token/my-store only), in .demo/app-token, and
call the emulator instead of Naver; the first run installs python3-hvac (apt) and node-vault (npm ci):
  VAULT_ADDR=$vault_addr VAULT_TOKEN=\$(cat .demo/app-token) NAVER_COMMERCE_API_URL=$emulator_url APP_ITERATIONS=3 APP_INTERVAL=1 "\$(scripts/install-python-hvac.sh)" examples/python/app.py
  VAULT_ADDR=$vault_addr VAULT_TOKEN=\$(cat .demo/app-token) NAVER_COMMERCE_API_URL=$emulator_url APP_ITERATIONS=3 APP_INTERVAL=1 node "\$(scripts/install-node-vault.sh)/app.js"

Stop it: make demo-stop
EOF
}

start() {
  if running vault "vault server" && running emulator navercommerce-emulator && running agent "vault agent"; then
    say "the demo is already running (make demo-stop first to restart it with a new build)"
    summary
    exit 0
  fi
  if [ -d "$demo" ] && ls "$demo"/*.pid >/dev/null 2>&1; then
    say "a previous demo is partly running; stopping it first"
    stop
  fi

  vault=${VAULT_BIN:-}
  [ -n "$vault" ] || vault=$("$here/scripts/install-vault.sh")
  [ -x "$vault" ] || die "VAULT_BIN=$vault is not an executable"
  version=${PLUGIN_VERSION:-$("$here/scripts/version.sh")}
  [ -x "$plugin_bin" ] || die "$plugin_bin is missing: run 'make build' (or 'make demo')"
  [ -x "$emulator_bin" ] || die "$emulator_bin is missing: run 'make build' (or 'make demo')"
  local what
  for what in "$vault_port:Vault's API (DEMO_VAULT_PORT)" "$((vault_port + 1)):Vault's cluster port (DEMO_VAULT_PORT + 1)" \
    "$emulator_port:the emulator (DEMO_EMULATOR_PORT)"; do
    if port_taken "${what%%:*}"; then
      die "127.0.0.1:${what%%:*} (${what#*:}) is in use; pick free ports, e.g. DEMO_VAULT_PORT=18200 DEMO_EMULATOR_PORT=19443 make demo"
    fi
  done

  rm -rf "$demo"
  mkdir -p "$demo/plugins" "$demo/home"
  chmod 700 "$demo"

  say "starting the Naver emulator on 127.0.0.1:$emulator_port"
  background emulator "$demo/emulator.log" "$emulator_bin" -listen "127.0.0.1:$emulator_port" \
    -client-id "$client_id" -client-secret "$client_secret" -account-ids "$known_sellers" -url-file "$demo/emulator.url"
  wait_until 15 emulator "$demo/emulator.log" test -s "$demo/emulator.url"
  emulator_url=$(cat "$demo/emulator.url")

  say "starting a dev Vault ($("$vault" version | head -n1)) on $vault_addr"
  cp "$plugin_bin" "$demo/plugins/$plugin_name"
  printf 'plugin_directory = "%s"\n' "$demo/plugins" >"$demo/vault.hcl"
  # HOME: a dev server writes its root token to ~/.vault-token; leave the user's alone.
  HOME="$demo/home" background vault "$demo/vault.log" "$vault" server -dev \
    -dev-root-token-id="$root_token" -dev-listen-address="127.0.0.1:$vault_port" \
    -config="$demo/vault.hcl" -log-level=info
  export VAULT_ADDR="$vault_addr" VAULT_TOKEN="$root_token"
  unset VAULT_NAMESPACE VAULT_CACERT VAULT_CAPATH
  wait_until 30 vault "$demo/vault.log" "$vault" status

  sha=$(sha256sum "$demo/plugins/$plugin_name" | cut -d' ' -f1)
  say "vault plugin register -sha256=$sha -version=$version secret $plugin_name"
  "$vault" plugin register -sha256="$sha" -version="$version" secret "$plugin_name" ||
    fail_start "registering the plugin failed" "$demo/vault.log"
  say "vault secrets enable -path=navercommerce -plugin-version=$version $plugin_name"
  "$vault" secrets enable -path=navercommerce -plugin-version="$version" "$plugin_name" ||
    fail_start "enabling the plugin failed" "$demo/vault.log"

  say "vault write navercommerce/config client_id=$client_id client_secret='$client_secret' base_url=$emulator_url"
  "$vault" write navercommerce/config client_id="$client_id" client_secret="$client_secret" base_url="$emulator_url" ||
    fail_start "writing the config failed" "$demo/vault.log"
  say "vault write navercommerce/roles/my-app type=SELF"
  "$vault" write navercommerce/roles/my-app type=SELF
  say "vault write navercommerce/roles/my-store type=SELLER account_id=$seller_account"
  "$vault" write navercommerce/roles/my-store type=SELLER account_id="$seller_account"

  say "vault read navercommerce/token/my-store"
  "$vault" read navercommerce/token/my-store || fail_start "reading a token failed" "$demo/vault.log"

  say "starting Vault Agent, rendering navercommerce/token/my-store into .demo/token.txt"
  printf '%s' "$root_token" >"$demo/agent-token"
  chmod 600 "$demo/agent-token"
  cat >"$demo/agent.hcl" <<EOF
vault {
  address = "$vault_addr"
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = "$demo/agent-token"
    }
  }
}
template_config {
  exit_on_retry_failure = true
}
template {
  contents    = "{{ with secret \"navercommerce/token/my-store\" }}{{ .Data.access_token }}{{ end }}"
  destination = "$demo/token.txt"
  perms       = "0600"
}
EOF
  HOME="$demo/home" background agent "$demo/agent.log" "$vault" agent -config="$demo/agent.hcl"
  wait_until 30 agent "$demo/agent.log" test -s "$demo/token.txt"
  say "the agent rendered .demo/token.txt: $(cat "$demo/token.txt")"

  say "vault policy write $app_policy examples/policy.hcl; vault token create -policy=$app_policy  (the example apps' token, in .demo/app-token)"
  "$vault" policy write "$app_policy" "$here/examples/policy.hcl" >/dev/null ||
    fail_start "writing the policy examples/policy.hcl failed" "$demo/vault.log"
  (umask 077 && "$vault" token create -policy="$app_policy" -field=token >"$demo/app-token") ||
    fail_start "creating the example apps' token failed" "$demo/vault.log"

  say "vault read -format=yaml navercommerce/status keys=true   (what operators see: cached keys, requests, last errors)"
  "$vault" read -format=yaml navercommerce/status keys=true || fail_start "reading the status failed" "$demo/vault.log"
  summary
}

status() {
  local name match
  for name in emulator vault agent; do
    case $name in
      emulator) match=navercommerce-emulator ;;
      vault) match="vault server" ;;
      agent) match="vault agent" ;;
    esac
    if running "$name" "$match"; then echo "$name: running (pid $(cat "$demo/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
