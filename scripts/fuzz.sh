#!/usr/bin/env bash
# Runs every Go fuzz target, one after the other (go test -fuzz takes one
# target per package at a time), and prints each target's executions and
# average rate.
#
# Budgets are execution counts (-fuzztime Nx), not durations: with a
# duration, Go 1.26's fuzz coordinator can report its own stop deadline as
# a failure ("context deadline exceeded", no crasher; golang/go#75804,
# fixed only in Go 1.27), which failed CI once on a loaded machine. A count
# has no such deadline. Each count below is about 15 s on a 2-core CI box;
# FUZZX multiplies them all (make fuzz: 2, about 30 s each; .ci/run: 1).
# -timeout still ends a target that hangs, and a new input is minimised for
# at most 1 s.
#
# A crasher fails the run; go test keeps it under testdata/fuzz/<target>/,
# where it stays as a regression seed once committed.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZX=${FUZZX:-1}
targets=(
  "./proxy FuzzValidSession 60000"
  "./proxy FuzzPathDenial 60000"
  "./config FuzzParseRoutes 300000"
  "./finapi FuzzParseRetryAfter 100000"
  "./finapi FuzzGrantAnswer 70000"
  "./cache FuzzSealerOpen 60000"
  "./jwtsession FuzzVerify 90000"
)
for t in "${targets[@]}"; do
  set -- $t
  n=$(($3 * FUZZX))
  start=$(date +%s%N)
  out=$(go test -count=1 -run '^$' -fuzz "^$2\$" -fuzztime "${n}x" -fuzzminimizetime 1s -timeout 10m "$1" 2>&1) || {
    echo "$out" | tail -30
    echo "fuzz: $2 FAILED" >&2
    exit 1
  }
  awk -v n="$n" -v ns=$(($(date +%s%N) - start)) -v t="$2" -v p="$1" \
    'BEGIN { s = ns / 1e9; printf "fuzz: %s (%s): %d executions in %.1fs, %.0f/s on average\n", t, p, n, s, n / s }'
done
