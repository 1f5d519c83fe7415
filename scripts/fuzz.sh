#!/usr/bin/env bash
# Runs every Go fuzz target for FUZZTIME each (default 30s), one after the
# other (go test -fuzz takes one target per package at a time), and prints
# each target's last progress line (executions, executions per second).
# A crasher fails the run; go test keeps it under testdata/fuzz/<target>/,
# where it stays as a regression seed once committed.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
targets=(
  "./proxy FuzzValidSession"
  "./proxy FuzzPathDenial"
  "./config FuzzParseRoutes"
  "./finapi FuzzParseRetryAfter"
  "./finapi FuzzGrantAnswer"
  "./cache FuzzSealerOpen"
  "./jwtsession FuzzVerify"
)
for t in "${targets[@]}"; do
  set -- $t
  out=$(go test -count=1 -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" "$1" 2>&1) || { echo "$out" | tail -30; echo "fuzz: $2 FAILED" >&2; exit 1; }
  line=$(echo "$out" | grep -E '^fuzz: elapsed' | grep -v '(0/sec)' | tail -1)
  echo "fuzz: $2 ($1, $FUZZTIME): ${line#fuzz: }"
done
