#!/usr/bin/env bash
# build.sh OUT VERSION: the one build command of the finproxy binary, used by
# make build, the Dockerfile and a test of make test (build_test.go): static
# (CGO_ENABLED=0), reproducible paths (-trimpath), stripped, with VERSION
# stamped for --version and finproxy_build_info.
set -euo pipefail
if [ $# -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
  echo "usage: $0 OUT VERSION" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
CGO_ENABLED=0 exec "${GO:-go}" build -trimpath \
  -ldflags "-s -w -X github.com/finproxy/finproxy/metrics.version=$2" \
  -o "$1" .
