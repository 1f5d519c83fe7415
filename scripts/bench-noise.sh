#!/usr/bin/env bash
# bench-noise.sh: how much a pair's ratio in bench-proxy.sh moves by noise
# alone. Two identical bare engines (test/cmd/bareproxy) in front of the
# emulator's fixed upstream on loopback; PAIRS times, their ratio is taken
# two ways, one right after the other: one wrk run of BLOCK seconds each
# side (the order flipping from pair to pair), and SLICES runs of 1 s each
# side interleaved as bench-proxy.sh does (second, first, first, second,
# ...). Prints each pair's two ratios, then their mean, standard
# deviation and median distance from 1.00 (bench-proxy.sh reports medians):
# a ratio of 1.00 is the truth, the deviation is the method's noise. PAIRS (8), BLOCK (5), SLICES (5), SESSIONS (1000), BASE_PORT
# (18280; uses BASE_PORT+1 .. +4). About 2 minutes; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-8}
BLOCK=${BLOCK:-5}
SLICES=${SLICES:-5}
SESSIONS=${SESSIONS:-1000}
BASE_PORT=${BASE_PORT:-18280}
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
go build -o bin/finapi-emulator ./test/cmd/finapi-emulator
go build -o bin/bareproxy ./test/cmd/bareproxy
port() { echo $((BASE_PORT + $1)); }
for p in $(seq "$(port 1)" "$(port 4)"); do
  [[ -z $(ss -Hltn "sport = :$p") ]] || { echo "port $p is in use; set BASE_PORT to a free range" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
UP=127.0.0.1:$(port 1) A=127.0.0.1:$(port 3) B=127.0.0.1:$(port 4)
./bin/finapi-emulator -addr 127.0.0.1:"$(port 2)" -processctl-addr "" -echo-addr "" -fixed-addr "$UP" \
  -client-id bench -client-secret bench-secret >"$work/emulator.log" 2>&1 &
pids+=($!)
for addr in "$A" "$B"; do
  ./bin/bareproxy -addr "$addr" -target "http://$UP" -drop X-Session-Id >>"$work/bare.log" 2>&1 &
  pids+=($!)
done
for addr in "$UP" "$A" "$B"; do
  for _ in $(seq 100); do curl -fs -o /dev/null "http://$addr/" && break; sleep 0.1; done
done
for ((i = 0; i < SESSIONS; i++)); do printf 'bench-session-%06d\n' "$i"; done >"$work/sessions"
export SESSIONS_FILE=$work/sessions
# served addr seconds: the requests one wrk run completed.
served() { wrk -t1 -c32 -d"$2s" -s scripts/rotate.lua "http://$1/api/v2/accounts" | awk '/requests in/ {print $1}'; }
echo "== two identical bare engines, $PAIRS pairs: the second's ratio to the first with one ${BLOCK}s run each side, then with $SLICES runs of 1 s each side interleaved"
for ((p = 1; p <= PAIRS; p++)); do
  if ((p % 2)); then a=$(served "$A" "$BLOCK") b=$(served "$B" "$BLOCK"); else b=$(served "$B" "$BLOCK") a=$(served "$A" "$BLOCK"); fi
  sa=0 sb=0
  for ((s = 0; s < SLICES; s++)); do
    if (((p + s) % 2)); then x=$(served "$A" 1) y=$(served "$B" 1); else y=$(served "$B" 1) x=$(served "$A" 1); fi
    sa=$((sa + x)) sb=$((sb + y))
  done
  awk -v a="$a" -v b="$b" -v sa="$sa" -v sb="$sb" -v p="$p" 'BEGIN {printf "  pair %d: blocks %.3f  slices %.3f\n", p, b / a, sb / sa}'
done | tee "$work/pairs"
# mad k: the median absolute deviation from 1 of column k's ratios.
mad() { awk -v k="$1" '{d = $k - 1; print d < 0 ? -d : d}' "$work/pairs" | sort -g | awk '{v[NR] = $1} END {printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
awk -v mb="$(mad 4)" -v ms="$(mad 6)" '{r[1] = $4; r[2] = $6; for (k = 1; k <= 2; k++) {s[k] += r[k]; q[k] += r[k] * r[k]}; n++}
  END {for (k = 1; k <= 2; k++) {m = s[k] / n; printf "  %s: mean %.3f, standard deviation %.3f, median distance from 1.00 %s\n", k == 1 ? "blocks" : "slices", m, sqrt(q[k] / n - m * m), k == 1 ? mb : ms}}' "$work/pairs"
