#!/usr/bin/env bash
# Makes sure Prometheus and promtool are installed and prints the directory holding both
# (/usr/bin from Debian's `prometheus` package). Idempotent: apt-get runs only when the two do
# not both answer --version. The tests use promtool to validate the metrics exposition and
# run a Prometheus server of their own on loopback.
#
# The package would normally start a system service that keeps running; the tests want no
# such thing. apt-get runs with a policy-rc.d that forbids starting services (containers
# usually have one already; if not, one is put in place for the install only), and if a
# service manager started it anyway it is stopped and disabled.
# Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail

log() { printf 'install-prometheus: %s\n' "$*" >&2; }
# installed_dir prints the directory holding working prometheus and promtool binaries.
installed_dir() {
  local promtool dir
  promtool="$(command -v promtool 2>/dev/null)" || return 1
  dir="$(dirname "$promtool")"
  "$dir/promtool" --version >/dev/null 2>&1 && "$dir/prometheus" --version >/dev/null 2>&1 || return 1
  echo "$dir"
}

if installed_dir; then exit 0; fi

command -v apt-get >/dev/null || { log "no apt-get here: install Prometheus (prometheus and promtool on PATH) yourself"; exit 1; }
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "not root and no sudo: run apt-get install -y prometheus as root"; exit 1; }
  sudo=(sudo -n)
fi

# One apt-get at a time across the project's install scripts (tests may call them
# concurrently); apt's own lock would make a second apt-get fail instead of waiting.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-navercommerce"
mkdir -p "$cache"
exec 9>"$cache/apt.lock"
flock -w 600 9 || { log "timed out waiting for $cache/apt.lock"; exit 1; }
if installed_dir; then exit 0; fi

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  log "no $policy: adding one that forbids starting services, for this install only"
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi

# Update the package lists only when the package is not known yet (a fresh machine).
if [ -z "$(apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]; then
  log "prometheus unknown to apt: running apt-get update"
  "${sudo[@]}" apt-get update -q -o DPkg::Lock::Timeout=300 >&2
fi
log "installing prometheus (and promtool) with apt-get"
# --no-install-recommends: not prometheus-node-exporter, another service.
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
  -o DPkg::Lock::Timeout=300 prometheus >&2

# Where systemd runs (not in containers), the unit may have been enabled and started anyway.
if [ -d /run/systemd/system ] && systemctl is-active --quiet prometheus 2>/dev/null; then
  log "stopping and disabling the prometheus system service the package started"
  "${sudo[@]}" systemctl disable --now prometheus >&2 || log "could not stop the prometheus service; stop it yourself"
fi

dir="$(installed_dir)" || { log "installed prometheus, but prometheus/promtool do not run"; exit 1; }
log "installed prometheus $(dpkg-query -W -f='${Version}' prometheus 2>/dev/null)"
echo "$dir"
