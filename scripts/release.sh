#!/usr/bin/env bash
# Cross-compiles static plugin binaries into dist/ and writes dist/SHA256SUMS, the value
# `vault plugin register -sha256=...` wants. The version comes from git (scripts/version.sh):
# tag the commit (git tag v1.2.3) for a release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=${VERSION:-$(scripts/version.sh)}
name=vault-plugin-secrets-navercommerce
module=github.com/navercommerce/$name
rm -rf dist; mkdir -p dist
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64; do
  os=${target%/*} arch=${target#*/}
  ext=""; [ "$os" = windows ] && ext=.exe
  out="dist/${name}_${version}_${os}_${arch}${ext}"
  echo "release: $out"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath \
    -ldflags "-s -w -X ${module}.Version=${version}" -o "$out" ./cmd/$name
done
(cd dist && sha256sum ./* | sed 's| \./| |' > SHA256SUMS)
cat dist/SHA256SUMS
