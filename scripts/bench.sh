#!/usr/bin/env bash
# The benchmark behind `make bench` (which runs `make build` first): Go micro-benchmarks, then
# bench/cmd/vaultbench against the Naver emulator and Vault with the plugin and a no-op plugin,
# all on 127.0.0.1: a dev server phase, then a Raft phase (a single-node server with integrated
# storage in the work folder, then 10,000 sellers of one application on it). Prints one table to
# stdout (progress goes to stderr) and writes docs/benchmarks.md. About 12 minutes on 2 cores.
# When internal/sim has TestSellersWeek, its simulated week at 10,000 sellers is a section too.
#
#   VAULT_BIN=... PLUGIN_VERSION=... scripts/bench.sh
#   (PLUGIN_BIN, EMULATOR_BIN default to bin/ as built by `make build`; BENCH_OUT overrides
#   docs/benchmarks.md; BENCH_ARGS passes flags to vaultbench, e.g. "-rounds 3 -roles 2000 -raft=false")
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
GO=${GO:-go}
: "${VAULT_BIN:?set VAULT_BIN (make bench does: scripts/install-vault.sh prints it)}"
PLUGIN_VERSION=${PLUGIN_VERSION:-$(scripts/version.sh)}
plugin_bin=${PLUGIN_BIN:-$here/bin/vault-plugin-secrets-navercommerce}
emulator_bin=${EMULATOR_BIN:-$here/bin/navercommerce-emulator}
out=${BENCH_OUT:-$here/docs/benchmarks.md}
for f in "$VAULT_BIN" "$plugin_bin" "$emulator_bin"; do
  [ -x "$f" ] || { echo "bench: $f is missing or not executable (run make build)" >&2; exit 1; }
done

t0=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/navercommerce-bench.XXXXXX")
bench_pid=""
ok=0

# ours: pids of processes whose command line mentions the work directory (Vault, the plugins,
# the emulator, vaultbench), found without running anything whose own command line does.
ours() {
  local f pid args
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [ "$pid" = "$$" ] && continue
    mapfile -d '' -t args <"$f" 2>/dev/null || continue
    [[ "${args[*]}" == *"$work"* ]] && echo "$pid"
  done
  return 0
}

cleanup() {
  local pid i left
  trap - EXIT INT TERM HUP
  # vaultbench stops its children itself on SIGTERM.
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    for i in $(seq 1 200); do kill -0 "$bench_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # Whatever is left (vaultbench killed hard): the process groups it started, then stragglers.
  if [ -f "$work/pids" ]; then
    while read -r pid; do
      [[ "$pid" =~ ^[0-9]+$ ]] && kill -TERM -- "-$pid" 2>/dev/null || true
    done <"$work/pids"
  fi
  for i in $(seq 1 50); do
    left=$(ours)
    [ -z "$left" ] && break
    sleep 0.2
  done
  for pid in $(ours); do kill -KILL "$pid" 2>/dev/null || true; done
  if [ "$ok" = 1 ]; then
    rm -rf "$work"
  else
    echo "bench: failed; logs kept in $work ({dev,raft}/vault/vault-1.log, {dev,raft}/emulator/emulator.log, gobench.txt)" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "==> building the no-op plugin and the load generator" >&2
mkdir -p "$work/bin"
# The run uses copies: a rebuild of bin/ during the run (a checkout others work in) must not
# hand the Raft phase another plugin version than the dev phase.
cp "$plugin_bin" "$work/bin/vault-plugin-secrets-navercommerce"
cp "$emulator_bin" "$work/bin/navercommerce-emulator"
plugin_bin=$work/bin/vault-plugin-secrets-navercommerce
emulator_bin=$work/bin/navercommerce-emulator
CGO_ENABLED=0 "$GO" build -trimpath -o "$work/bin/vault-plugin-secrets-benchnoop" ./bench/noop-plugin
"$GO" build -o "$work/bin/vaultbench" ./bench/cmd/vaultbench

echo "==> Go benchmarks: signer, in-process reads (count 5), Naver requests per simulated day" >&2
# A failing Go benchmark does not stop the Vault measurements: the report shows the failure
# (its raw output is in it), and make bench fails at the end.
go_bench_failed=0
"$GO" test -run '^$' -bench 'SignClientSecret|TokenRead' -benchmem -count 5 -timeout 10m . >"$work/gobench.txt" || go_bench_failed=1
"$GO" test -run '^$' -bench 'NaverRequestsPerDay' -benchtime 1x -count 1 -timeout 10m . >>"$work/gobench.txt" || go_bench_failed=1
if [ "$go_bench_failed" = 1 ]; then
  echo "bench: a Go benchmark failed (the report shows its output); measuring Vault anyway" >&2
fi

# The simulated week at 10,000 sellers, where the simulator has it (a failure is reported like
# a Go benchmark's: the Vault measurements go on, make bench fails at the end).
sellers_week_args=()
if [ "${BENCH_SIM:-1}" != 0 ] && grep -qs 'func TestSellersWeek(' internal/sim/*_test.go; then
  echo "==> a simulated week at 10,000 sellers (internal/sim TestSellersWeek)" >&2
  if "$GO" test ./internal/sim -run '^TestSellersWeek$' -count=1 -timeout 20m -sellers-week-out="$work/sellers-week.md" >"$work/sellers-week.log" 2>&1 &&
    [ -s "$work/sellers-week.md" ]; then
    sellers_week_args=(-sellers-week "$work/sellers-week.md")
  else
    go_bench_failed=1
    echo "bench: TestSellersWeek failed (output in $work/sellers-week.log); measuring Vault anyway" >&2
    tail -n 20 "$work/sellers-week.log" >&2 || true
  fi
fi

echo "==> Vault benchmarks (vaultbench)" >&2
# In the background, so that the traps run while it works; vaultbench prints the table.
# shellcheck disable=SC2086
"$work/bin/vaultbench" -vault "$VAULT_BIN" -plugin "$plugin_bin" -plugin-version "$PLUGIN_VERSION" \
  -noop "$work/bin/vault-plugin-secrets-benchnoop" -emulator "$emulator_bin" -work "$work" \
  -gobench "$work/gobench.txt" -go-version "$("$GO" env GOVERSION)" -t0 "$t0" -out "$out" \
  "${sellers_week_args[@]}" ${BENCH_ARGS:-} &
bench_pid=$!
wait "$bench_pid"
bench_pid=""
ok=1
if [ "$go_bench_failed" = 1 ]; then
  echo "bench: failing: a Go benchmark or the simulated week failed (see $out and the messages above)" >&2
  exit 1
fi
