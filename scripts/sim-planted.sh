#!/usr/bin/env bash
# Measures what the simulator catches: plants each defect of internal/sim/testdata/planted/
# (one-line patches of the plugin) alone in a throwaway git worktree of HEAD, runs the
# corpus and the short campaign there (TestPlanted, for SIMTIME of wall time each, default
# 2m), does the same once without a defect (the baseline), and writes the table into
# docs/simulation.md's "Planted defects" section (TestPlantedTable).
#
#   scripts/sim-planted.sh [PATTERN]   only the patches whose name contains PATTERN
#
# A patch that no longer applies (the code it edits moved) is reported as such in the
# table: re-plant the defect in the new code and regenerate the patch with git diff.
# Takes about (defects + 1) × (SIMTIME + a minute) on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
simtime=${SIMTIME:-2m}
pattern=${1:-}
results=$(mktemp -d)
trees=()
cleanup() {
  for t in "${trees[@]}"; do git -C "$root" worktree remove --force "$t" >/dev/null 2>&1 || true; done
  rm -rf "$results"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# run_in TREE NAME: TestPlanted in TREE, written to $results/NAME.json.
run_in() {
  echo "sim-planted: $2: corpus and ${simtime} of short campaign" >&2
  (cd "$1" && go test ./internal/sim -run '^TestPlanted$' -count=1 -timeout 30m \
    -campaign="$simtime" -planted-out="$results/$2.json" >"$results/$2.log" 2>&1) ||
    { echo "sim-planted: $2: TestPlanted failed (see below)" >&2; tail -20 "$results/$2.log" >&2; }
}

new_tree() {
  local t
  t=$(mktemp -d)
  git -C "$root" worktree add --detach --quiet "$t" HEAD
  trees+=("$t")
  echo "$t"
}

base=$(new_tree)
# The simulator under test is the one in this checkout, also when it is not committed.
rm -rf "$base/internal/sim" && cp -a "$root/internal/sim" "$base/internal/sim"
run_in "$base" baseline

for patch in internal/sim/testdata/planted/*.patch; do
  name=$(basename "$patch" .patch)
  case "$name" in *"$pattern"*) ;; *) continue ;; esac
  tree=$(new_tree)
  rm -rf "$tree/internal/sim" && cp -a "$root/internal/sim" "$tree/internal/sim"
  if ! git -C "$tree" apply "$root/$patch" 2>"$results/$name.apply"; then
    echo "sim-planted: $name: the patch does not apply to this code: $(head -1 "$results/$name.apply")" >&2
    echo "patch does not apply: $(head -1 "$results/$name.apply" | tr '|' '/')" >"$results/$name.status"
    git -C "$root" worktree remove --force "$tree"
    continue
  fi
  echo applied >"$results/$name.status"
  run_in "$tree" "$name"
  git -C "$root" worktree remove --force "$tree"
done

go test ./internal/sim -run '^TestPlantedTable$' -count=1 -v \
  -planted-dir="$results" -planted-md="$root/docs/simulation.md" -planted-code="$(scripts/version.sh)" |
  sed -n '/^| /p'
echo "sim-planted: the table is in docs/simulation.md (\"Planted defects\")" >&2
