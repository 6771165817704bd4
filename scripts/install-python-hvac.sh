#!/usr/bin/env bash
# Makes sure Debian's python3-hvac (the HashiCorp Vault client for Python) is installed and
# prints the Python interpreter that sees it: /usr/bin/python3. Idempotent; apt-get runs only
# when hvac does not import. A `python3` first on PATH (pyenv, a venv) does not see Debian's
# dist-packages, which is why the example is run with /usr/bin/python3 explicitly.
# Without apt-get (macOS): `pip install hvac` for some interpreter and set PYTHON to it.
# Progress goes to stderr; only the interpreter's path goes to stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/apt.sh
. "$here/lib/apt.sh"

PYTHON="${PYTHON:-/usr/bin/python3}"
log() { printf 'install-python-hvac: %s\n' "$*" >&2; }
has_hvac() { [ -x "$PYTHON" ] && "$PYTHON" -c 'import hvac' 2>/dev/null; }

if ! has_hvac; then
  command -v apt-get >/dev/null || { log "$PYTHON cannot import hvac and there is no apt-get: pip install hvac, and set PYTHON to that interpreter"; exit 1; }
  apt_install python3-hvac has_hvac
  has_hvac || { log "installed python3-hvac, but $PYTHON still cannot import hvac"; exit 1; }
fi
echo "$PYTHON"
