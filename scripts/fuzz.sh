#!/usr/bin/env bash
# Runs every Go fuzz target of the root package for a short while (default 10s each), on top
# of the committed seed corpus in testdata/fuzz. A longer hunt: scripts/fuzz.sh 10m
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime=${1:-10s}
targets=$(go test -list '^Fuzz' . | grep '^Fuzz')
for target in $targets; do
  echo "fuzz: $target for $fuzztime"
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" . >/tmp/fuzz-$$.log 2>&1 || {
    cat /tmp/fuzz-$$.log; rm -f /tmp/fuzz-$$.log
    echo "fuzz: $target failed; the failing input is under testdata/fuzz/$target"; exit 1
  }
done
rm -f /tmp/fuzz-$$.log
echo "fuzz: all targets passed"
