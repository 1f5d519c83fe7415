#!/usr/bin/env bash
# Makes sure the browser test (test/browser_test.go) has Chromium: installs
# Debian's chromium when no chromium is on PATH.
set -euo pipefail
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi
echo "chromium: installing chromium" >&2
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
command -v chromium >/dev/null || { echo "chromium: not installed" >&2; exit 1; }
