#!/usr/bin/env bash
# gofmt, go vet and staticcheck (pinned; installed into a cache outside the clone on first use).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STATICCHECK_VERSION=v0.8.2
bin="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-navercommerce/staticcheck-${STATICCHECK_VERSION}"
if [ ! -x "$bin/staticcheck" ]; then
  echo "lint: installing staticcheck $STATICCHECK_VERSION into $bin" >&2
  GOBIN="$bin" go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "lint: gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go vet -tags acceptance ./acceptance/...
"$bin/staticcheck" ./...
"$bin/staticcheck" -tags acceptance ./acceptance/...
echo "lint: ok"
