# Sourced by the install scripts. apt_install PACKAGE CHECK installs Debian's PACKAGE with
# apt-get unless CHECK (a command, usually a shell function) already succeeds:
# - one apt-get at a time across the project's scripts (tests call them concurrently, and
#   apt's own lock would make a second apt-get fail instead of waiting);
# - the package lists are updated only when PACKAGE is unknown (a fresh machine);
# - no package may start a service while it is installed (a policy-rc.d for the install only,
#   where the machine has none);
# - as root, or through sudo.
# The caller defines log(). Progress goes to stderr.
apt_install() {
  local pkg=$1 check=$2
  command -v apt-get >/dev/null || { log "no apt-get here: install $pkg yourself"; return 1; }
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "not root and no sudo: run apt-get install -y $pkg as root"; return 1; }
    sudo=(sudo -n)
  fi
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-navercommerce"
  mkdir -p "$cache"
  local lock
  exec {lock}>"$cache/apt.lock"
  flock -w 600 "$lock" || { log "timed out waiting for $cache/apt.lock"; return 1; }
  if "$check"; then
    exec {lock}>&-
    return 0
  fi
  local policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e "$policy" ]; then
    log "no $policy: adding one that forbids starting services, for this install only"
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    added=1
  fi
  local status=0
  if [ -z "$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]; then
    log "$pkg unknown to apt: running apt-get update"
    "${sudo[@]}" apt-get update -q -o DPkg::Lock::Timeout=300 >&2 || status=$?
  fi
  if [ "$status" -eq 0 ]; then
    log "installing $pkg with apt-get"
    # --no-install-recommends: nothing the tests do not need (no extra services).
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout=300 "$pkg" >&2 || status=$?
  fi
  if [ -n "$added" ]; then "${sudo[@]}" rm -f "$policy"; fi
  exec {lock}>&-
  [ "$status" -eq 0 ] || { log "apt-get failed for $pkg"; return "$status"; }
  log "installed $pkg $(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null)"
}
