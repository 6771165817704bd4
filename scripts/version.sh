#!/usr/bin/env bash
# Prints the plugin version as semver with a leading v, which Vault requires:
# the tag when HEAD is tagged vX.Y.Z, otherwise the next patch of the last tag as a
# prerelease ("v0.1.1-dev.5.g1a2b3c4"), or v0.1.0-dev.g<commit> before any tag.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
  echo "$tag"; exit 0
fi
commit=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
if last=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null); then
  n=$(git rev-list --count "$last"..HEAD)
  IFS=. read -r major minor patch <<<"${last#v}"
  echo "v${major}.${minor}.$((${patch%%-*} + 1))-dev.${n}.g${commit}"
else
  echo "v0.1.0-dev.g${commit}"
fi
