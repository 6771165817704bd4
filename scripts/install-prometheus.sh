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

# shellcheck source=lib/apt.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/apt.sh"
apt_install prometheus installed_dir >/dev/null
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo -n)

# Where systemd runs (not in containers), the unit may have been enabled and started anyway.
if [ -d /run/systemd/system ] && systemctl is-active --quiet prometheus 2>/dev/null; then
  log "stopping and disabling the prometheus system service the package started"
  "${sudo[@]}" systemctl disable --now prometheus >&2 || log "could not stop the prometheus service; stop it yourself"
fi

dir="$(installed_dir)" || { log "installed prometheus, but prometheus/promtool do not run"; exit 1; }
echo "$dir"
