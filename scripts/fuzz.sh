#!/usr/bin/env bash
# Runs every Go fuzz target for FUZZTIME each (default 30s; minimising a new
# input at most 1s, or a minimisation running past FUZZTIME fails the run
# with "context deadline exceeded"), one after the
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
  out=$(go test -count=1 -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 1s "$1" 2>&1) || { echo "$out" | tail -30; echo "fuzz: $2 FAILED" >&2; exit 1; }
  # The last progress line has the totals; its rate is the last interval's.
  line=$(echo "$out" | grep -E '^fuzz: elapsed.*execs:' | tail -1)
  [ -n "$line" ] || { echo "fuzz: $2 ($1): passed, no progress line within $FUZZTIME"; continue; }
  elapsed=$(echo "$line" | sed -E 's/.*elapsed: ([0-9]+)s.*/\1/')
  execs=$(echo "$line" | sed -E 's/.*execs: ([0-9]+).*/\1/')
  echo "fuzz: $2 ($1): $execs executions in ${elapsed}s, $((execs / (elapsed > 0 ? elapsed : 1)))/s on average"
done
