#!/usr/bin/env bash
# Regenerates testdata/signature_vectors.json: the same fixed-seed triples are hashed by
# Python bcrypt (Debian python3-bcrypt) and by bcryptjs (pinned in package-lock.json); the
# two outputs must agree byte for byte. See README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/testdata/signature_vectors.json"
PYTHON="${PYTHON:-/usr/bin/python3}"
NODE="${NODE:-node}"

die() { echo "generate.sh: $*" >&2; exit 1; }

"$PYTHON" -c 'import bcrypt' 2>/dev/null ||
  die "$PYTHON cannot import bcrypt; run: apt-get install -y python3-bcrypt (or set PYTHON=...)"
if [ ! -d "$here/node_modules/bcryptjs" ]; then
  echo "generate.sh: installing bcryptjs with npm ci" >&2
  (cd "$here" && npm ci --no-audit --no-fund) || die "npm ci failed"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$here"
"$PYTHON" generate.py triples >"$tmp/triples.tsv"
"$PYTHON" generate.py hash <"$tmp/triples.tsv" >"$tmp/python.tsv"
"$NODE" generate.js hash <"$tmp/triples.tsv" >"$tmp/node.tsv"

n_in=$(wc -l <"$tmp/triples.tsv")
[ "$n_in" -gt 0 ] && [ "$(wc -l <"$tmp/python.tsv")" -eq "$n_in" ] && [ "$(wc -l <"$tmp/node.tsv")" -eq "$n_in" ] ||
  die "line counts differ: triples=$n_in python=$(wc -l <"$tmp/python.tsv") node=$(wc -l <"$tmp/node.tsv")"
if ! cmp -s "$tmp/python.tsv" "$tmp/node.tsv"; then
  echo "generate.sh: MISMATCH between Python bcrypt and bcryptjs:" >&2
  diff "$tmp/python.tsv" "$tmp/node.tsv" >&2 || true
  exit 1
fi

known=$'aaaabbbb\t1643956077762\t$2a$04$QKLnou1D2cSH19Pia30bcu\t$2a$04$QKLnou1D2cSH19Pia30bcumkgWHhD5UNbHprCG2.USOiBzWBlJid2\tJDJhJDA0JFFLTG5vdTFEMmNTSDE5UGlhMzBiY3Vta2dXSGhENVVOYkhwckNHMi5VU09pQnpXQmxKaWQy'
[ "$(head -n 1 "$tmp/python.tsv")" = "$known" ] || die "known vector does not reproduce: $(head -n 1 "$tmp/python.tsv")"

py_version="$("$PYTHON" generate.py version)"
js_version="$("$NODE" generate.js version)"
"$PYTHON" generate.py assemble "$tmp/python.tsv" "$py_version" "$js_version" >"$tmp/out.json"
mkdir -p "$(dirname "$out")"
mv "$tmp/out.json" "$out"
echo "generate.sh: wrote $n_in vectors to ${out#"$root"/} (python bcrypt $py_version, bcryptjs $js_version; outputs identical)" >&2
