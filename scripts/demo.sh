#!/usr/bin/env bash
# The demo behind `make demo` / `make demo-stop`: the Naver emulator, a dev Vault with the
# plugin registered by SHA-256 under its version, and a Vault Agent rendering a token into a
# file, all on 127.0.0.1 and running in the background. State, pid files and logs: .demo/
#
#   scripts/demo.sh start    (env: VAULT_BIN, PLUGIN_VERSION; DEMO_VAULT_PORT=8200 (and +1 for Vault's
#                             cluster port), DEMO_EMULATOR_PORT=9443; PLUGIN_BIN and EMULATOR_BIN
#                             default to bin/ as built by `make build`;
#                             DEMO_START_TIMEOUT=60: seconds each process has to become ready)
#   scripts/demo.sh restart-agent   (a new Vault Agent process, as after a client secret rotation)
#   scripts/demo.sh stop     (safe to run twice; stops also what a failed or interrupted start left)
#   scripts/demo.sh status
#
# Never waits without a deadline: a process that ends while starting is reported with its exit
# status and the end of its log, one that is not ready in time likewise, and an interrupted
# start (Ctrl-C, SIGTERM, SIGHUP) stops what it started.
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
start_timeout=${DEMO_START_TIMEOUT:-60}
# The processes this run started, in order: a failed or interrupted run stops these.
started=()

say() { printf '==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# Each process the demo starts has .demo/NAME.pid and .demo/NAME.started, its start time as the
# system records it. The pid alone may belong to another process by the time `stop` runs, and
# the command line proves nothing either: until setsid (or a wrapper) has exec'd the program,
# it shows the shell that forked it. The pid and its start time together name one process.

# proc_stat PID N: the Nth field of /proc/PID/stat counted after the command name (which is in
# parentheses and may hold spaces): 1 is the state, 3 the process group, 20 the start time.
proc_stat() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a fields <<<"${stat##*) }"
  [ -n "${fields[$2 - 1]:-}" ] || return 1
  echo "${fields[$2 - 1]}"
}

# started_at PID: when the process started; empty when the system does not say (no /proc, no ps).
started_at() {
  proc_stat "$1" 20 2>/dev/null || ps -o lstart= -p "$1" 2>/dev/null || true
}

# alive PID: the process exists and has not ended (a zombie has ended: it awaits its status).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(proc_stat "$1" 1 2>/dev/null || ps -o stat= -p "$1" 2>/dev/null || true)
  case $state in Z*) return 1 ;; esac
}

# match NAME: what the command line of a demo started by an older version of this script shows
# (its pid files have no start time).
match() {
  case $1 in
    emulator) echo navercommerce-emulator ;;
    vault) echo "vault server" ;;
    agent) echo "vault agent" ;;
  esac
}

# running NAME: the pid in .demo/NAME.pid is alive and is the process the demo started.
running() {
  local pid recorded now
  pid=$(cat "$demo/$1.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  recorded=$(cat "$demo/$1.started" 2>/dev/null || true)
  now=$(started_at "$pid")
  if [ -n "$recorded" ] && [ -n "$now" ]; then
    [ "$recorded" = "$now" ]
  elif [ -f "$demo/$1.started" ]; then
    true # started where neither /proc nor ps tells a start time: the pid is all there is
  else
    { tr '\0' ' ' <"/proc/$pid/cmdline" || ps -o args= -p "$pid"; } 2>/dev/null | grep -q -- "$(match "$1")"
  fi
}

stop_one() { # NAME
  local pid group="" i
  if running "$1"; then
    pid=$(cat "$demo/$1.pid")
    # setsid made it the leader of its own process group: what it leaves behind there (a
    # wrapper's child, the plugins of a Vault that had to be killed) goes with it.
    [ "$(proc_stat "$pid" 3 2>/dev/null || ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ] && group=$pid
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      say "$1 (pid $pid) did not stop within 10s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    if [ -n "$group" ]; then kill -KILL -- "-$group" 2>/dev/null || true; fi
    say "stopped $1 (pid $pid)"
  else
    say "$1 is not running"
  fi
  rm -f "$demo/$1.pid" "$demo/$1.started"
}

stop() {
  stop_one agent
  stop_one vault
  stop_one emulator
}

# stop_started: stops what this run started, the last first.
stop_started() {
  local i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    stop_one "${started[i]}"
  done
}

# port_taken PORT: something accepts connections on 127.0.0.1:PORT.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# background NAME LOG CMD...: start CMD detached from this shell's terminal (its own session,
# where setsid exists), remember its pid and start time. It stays this shell's child, so its
# exit status can be had once it has ended.
background() {
  local name=$1 log=$2 pid
  shift 2
  # 8<&-: the lock of this run (start_checks) is not theirs to hold.
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" >"$log" 2>&1 </dev/null 8<&- &
  else
    "$@" >"$log" 2>&1 </dev/null 8<&- &
  fi
  pid=$!
  echo "$pid" >"$demo/$name.pid"
  started_at "$pid" >"$demo/$name.started"
  started+=("$name")
}

# how_it_ended NAME: sets `ended` to how the background process NAME ended, from its exit
# status. Only for a process that has ended (alive says no): `wait` then answers at once, and
# for a pid that is not this shell's child it says so at once. Not in $(...): a subshell
# cannot wait for this shell's children.
how_it_ended() {
  local pid status=0
  ended="ended"
  pid=$(cat "$demo/$1.pid" 2>/dev/null) || return 0
  if alive "$pid"; then
    ended="is still running (pid $pid)"
    return 0
  fi
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

# fail_start MESSAGE [LOG]: says what failed and shows the end of LOG, says how any other
# process this run started has ended meanwhile, stops them all and exits.
fail_start() {
  local name log
  trap - INT TERM HUP EXIT
  # Bash prints its own notice of a child killed by a signal ("Killed") after the next command;
  # let it go here rather than amid the report, which says how each process ended. (The traps
  # are off: a trap run inside this redirection would print nothing.)
  { sleep 0.1; } 2>/dev/null
  printf '\ndemo: %s\n' "$1" >&2
  if [ -n "${2:-}" ] && [ -s "$2" ]; then
    printf -- '--- last lines of %s:\n' "${2#"$here"/}" >&2
    tail -n 25 "$2" >&2
  elif [ -n "${2:-}" ]; then
    printf -- '--- %s is empty\n' "${2#"$here"/}" >&2
  fi
  for name in ${started[@]+"${started[@]}"}; do
    log="$demo/$name.log"
    # wait_until's message has said how that one ended.
    [ "$name" = "${described:-}" ] && continue
    if ! running "$name" && [ -f "$demo/$name.pid" ]; then
      how_it_ended "$name"
      printf 'demo: meanwhile %s %s\n' "$(what "$name")" "$ended" >&2
      if [ "$log" != "${2:-}" ] && [ -s "$log" ]; then
        printf -- '--- last lines of %s:\n' "${log#"$here"/}" >&2
        tail -n 10 "$log" >&2 2>/dev/null || true
      fi
    fi
  done
  if [ "${#started[@]}" -gt 0 ]; then
    printf 'demo: stopping what was started\n' >&2
    stop_started >&2
    started=()
  fi
  exit "${3:-1}"
}

# interrupted SIGNAL: the start was interrupted; stop what it started.
interrupted() {
  fail_start "interrupted by SIG$1 while starting" "" $((128 + $(kill -l "$1")))
}

# wait_until NAME LOG CMD...: poll CMD until it succeeds while NAME keeps running, for at most
# DEMO_START_TIMEOUT seconds. Every failure ends the script with what happened and NAME's log.
wait_until() {
  local name=$1 log=$2 pid deadline
  shift 2
  pid=$(cat "$demo/$name.pid")
  deadline=$((SECONDS + start_timeout))
  while :; do
    if ! alive "$pid"; then
      how_it_ended "$name"
      if [ ! -s "$log" ]; then
        ended="$ended, and its log is empty: it ended before it wrote a line"
      fi
      described=$name
      fail_start "$(what "$name") $ended" "$log"
    fi
    # Ready only if it is still running: the probe may have reached another program that
    # took the port meanwhile.
    if "$@" >/dev/null 2>&1 && alive "$pid"; then return 0; fi
    if [ "$SECONDS" -gt "$deadline" ]; then
      fail_start "$(what "$name") was not ready within ${start_timeout}s (DEMO_START_TIMEOUT); it is still running (pid $pid)" "$log"
    fi
    # Not quieted like fail_start's sleep: a trap run inside a redirection would print nothing.
    sleep 0.2
  done
}

summary() {
  local emulator_url path_hint=""
  vault=${vault:-$(cat "$demo/vault-bin" 2>/dev/null || echo "${VAULT_BIN:-}")}
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
its admin API is at ${emulator_url%/external}/_emulator/, with which you can rehearse an outage or a
rotation: README.md "The demo's ports and the emulator's admin API",
README.ko.md "데모의 포트와 에뮬레이터 관리 API".

Run the example apps against the demo, from the repository root. They use a Vault token of
examples/policy.hcl (it may read navercommerce/token/my-store only), in .demo/app-token, and
call the emulator instead of Naver; the first run installs python3-hvac (apt) and node-vault (npm ci):
  VAULT_ADDR=$vault_addr VAULT_TOKEN=\$(cat .demo/app-token) NAVER_COMMERCE_API_URL=$emulator_url APP_ITERATIONS=3 APP_INTERVAL=1 "\$(scripts/install-python-hvac.sh)" examples/python/app.py
  VAULT_ADDR=$vault_addr VAULT_TOKEN=\$(cat .demo/app-token) NAVER_COMMERCE_API_URL=$emulator_url APP_ITERATIONS=3 APP_INTERVAL=1 node "\$(scripts/install-node-vault.sh)/app.js"

Restart its Vault Agent (a rotation needs it: README.md "Rotate the client secret",
README.ko.md "애플리케이션 시크릿 교체"): make demo-restart-agent
Stop it: make demo-stop
EOF
}

# start_agent: a Vault Agent rendering navercommerce/token/my-store into .demo/token.txt, and
# the wait for its first rendering.
start_agent() {
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
  # Its first rendering is the sign it is ready; a file left by an earlier agent is no sign.
  rm -f "$demo/token.txt"
  HOME="$demo/home" background agent "$demo/agent.log" "$vault" agent -config="$demo/agent.hcl"
  wait_until agent "$demo/agent.log" test -s "$demo/token.txt"
  say "the agent rendered .demo/token.txt: $(cat "$demo/token.txt")"
}

# restart_agent: a new Vault Agent process for the running demo. An agent keeps the token it
# rendered until ~90% of its lease, even once Naver refuses it (after a rotation of the client
# secret); a new process reads the token again.
restart_agent() {
  start_checks
  if ! running vault || ! running emulator; then
    die "the demo is not running (scripts/demo.sh status); start it with make demo"
  fi
  vault=$(cat "$demo/vault-bin" 2>/dev/null || echo "${VAULT_BIN:-}")
  [ -n "$vault" ] || vault=$("$here/scripts/install-vault.sh")
  vault_port=$(cat "$demo/vault-port" 2>/dev/null || echo "$vault_port")
  vault_addr="http://127.0.0.1:$vault_port"
  [ -x "$vault" ] || die "the demo's vault binary ($vault, from .demo/vault-bin) is not an executable"
  export VAULT_ADDR="$vault_addr" VAULT_TOKEN="$root_token"
  unset VAULT_NAMESPACE VAULT_CACERT VAULT_CAPATH
  guard_start
  stop_one agent
  start_agent
  started_fine
}

# start_checks: before a start or restart-agent. DEMO_START_TIMEOUT must be a number. And a
# second one in this directory while one runs would stop the first one's processes and take
# over its pid files: refuse it. Needs flock (util-linux); without it, the user is trusted.
# `stop` never waits for the lock: it must always work.
start_checks() {
  [[ "$start_timeout" =~ ^[1-9][0-9]*$ ]] || die "DEMO_START_TIMEOUT=$start_timeout: want a whole number of seconds"
  command -v flock >/dev/null 2>&1 || return 0
  exec 8<"${BASH_SOURCE[0]}"
  flock -n 8 || die "another scripts/demo.sh start or restart-agent is running in $here; let it finish (or stop it with make demo-stop)"
}

# on_exit STATUS: a start or restart that ends without fail_start (set -e, die) stops what it
# started all the same.
on_exit() {
  if [ "$1" -ne 0 ] && [ "${#started[@]}" -gt 0 ]; then
    printf 'demo: failed (exit status %s); stopping what was started\n' "$1" >&2
    stop_started >&2
  fi
}

# guard_start: from here on, an interruption or a failure stops what this run started.
guard_start() {
  trap 'interrupted INT' INT
  trap 'interrupted TERM' TERM
  trap 'interrupted HUP' HUP
  trap 'on_exit $?' EXIT
}

# started_fine: what this run started stays running.
started_fine() {
  trap - INT TERM HUP EXIT
  started=()
}

start() {
  start_checks
  if running vault && running emulator && running agent; then
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
  echo "$vault" >"$demo/vault-bin"
  # restart-agent (run later, maybe without this environment) needs the same ports.
  printf '%s\n' "$vault_port" >"$demo/vault-port"
  guard_start

  say "starting the Naver emulator on 127.0.0.1:$emulator_port"
  background emulator "$demo/emulator.log" "$emulator_bin" -listen "127.0.0.1:$emulator_port" \
    -client-id "$client_id" -client-secret "$client_secret" -account-ids "$known_sellers" -url-file "$demo/emulator.url"
  wait_until emulator "$demo/emulator.log" test -s "$demo/emulator.url"
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
  # A bound on each probe: a Vault that accepts connections but does not answer must not stall it.
  wait_until vault "$demo/vault.log" env VAULT_CLIENT_TIMEOUT=5s "$vault" status

  sha=$({ sha256sum "$demo/plugins/$plugin_name" 2>/dev/null || shasum -a 256 "$demo/plugins/$plugin_name"; } | cut -d' ' -f1)
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
  "$vault" write navercommerce/roles/my-app type=SELF || fail_start "writing a role failed" "$demo/vault.log"
  say "vault write navercommerce/roles/my-store type=SELLER account_id=$seller_account"
  "$vault" write navercommerce/roles/my-store type=SELLER account_id="$seller_account" ||
    fail_start "writing a role failed" "$demo/vault.log"

  say "vault read navercommerce/token/my-store"
  "$vault" read navercommerce/token/my-store || fail_start "reading a token failed" "$demo/vault.log"

  start_agent
  say "vault policy write $app_policy examples/policy.hcl; vault token create -policy=$app_policy  (the example apps' token, in .demo/app-token)"
  "$vault" policy write "$app_policy" "$here/examples/policy.hcl" >/dev/null ||
    fail_start "writing the policy examples/policy.hcl failed" "$demo/vault.log"
  (umask 077 && "$vault" token create -policy="$app_policy" -field=token >"$demo/app-token") ||
    fail_start "creating the example apps' token failed" "$demo/vault.log"

  say "vault read -format=yaml navercommerce/status keys=true   (what operators see: cached keys, requests, last errors)"
  "$vault" read -format=yaml navercommerce/status keys=true || fail_start "reading the status failed" "$demo/vault.log"
  started_fine
  summary
}

status() {
  local name
  for name in emulator vault agent; do
    if running "$name"; then echo "$name: running (pid $(cat "$demo/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  restart-agent) restart_agent ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|restart-agent|stop|status" >&2; exit 2 ;;
esac
