#!/usr/bin/env bash
# Makes sure Debian's python3-hvac (the HashiCorp Vault client for Python) is installed and
# prints the Python interpreter that sees it: /usr/bin/python3. Idempotent; apt-get runs only
# when hvac does not import. A `python3` first on PATH (pyenv, a venv) does not see Debian's
# dist-packages, which is why the example is run with /usr/bin/python3 explicitly.
# Without apt-get (macOS): `pip install hvac` for some interpreter and set PYTHON to it.
# Progress goes to stderr; only the interpreter's path goes to stdout.
set -euo pipefail

PYTHON="${PYTHON:-/usr/bin/python3}"
log() { printf 'install-python-hvac: %s\n' "$*" >&2; }
has_hvac() { [ -x "$PYTHON" ] && "$PYTHON" -c 'import hvac' 2>/dev/null; }

if has_hvac; then
  echo "$PYTHON"; exit 0
fi

command -v apt-get >/dev/null || { log "$PYTHON cannot import hvac and there is no apt-get: pip install hvac, and set PYTHON to that interpreter"; exit 1; }
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "not root and no sudo: run apt-get install -y python3-hvac as root"; exit 1; }
  sudo=(sudo -n)
fi

# One install at a time (tests may call this concurrently); apt's own lock would make a
# second apt-get fail instead of waiting.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-navercommerce"
mkdir -p "$cache"
exec 9>"$cache/apt.lock"
flock -w 600 9 || { log "timed out waiting for $cache/apt.lock"; exit 1; }
if has_hvac; then
  echo "$PYTHON"; exit 0
fi

apt_install() {
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 python3-hvac >&2
}
# Update the package lists only when the package is not known yet (a fresh machine).
if [ -z "$(apt-cache policy python3-hvac 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]; then
  log "python3-hvac unknown to apt: running apt-get update"
  "${sudo[@]}" apt-get update -q -o DPkg::Lock::Timeout=300 >&2
fi
log "installing python3-hvac with apt-get"
apt_install
has_hvac || { log "installed python3-hvac, but $PYTHON still cannot import hvac"; exit 1; }
log "installed python3-hvac $(dpkg-query -W -f='${Version}' python3-hvac 2>/dev/null)"
echo "$PYTHON"
