#!/usr/bin/env bash
# make bench's load benchmark, on loopback, all in one run so that every
# figure is a ratio to a baseline measured in the same run on this noisy
# machine. The baseline is the engine's real ceiling: a bare
# httputil.ReverseProxy (test/cmd/bareproxy: Rewrite, the same pooled
# transport, the same copy-buffer pool, a fixed Bearer). Against it:
# finproxy in header mode (memory store; also at log level warn, which
# shows what the line per request costs), jwt mode (HS256), and, when Redis
# answers, header mode with the Redis store with its L1 and without. All
# proxy to the same upstream, the emulator's fixed finAPI-like one (an
# account list for every request, the request id returned as finAPI does):
# its answer does not grow with the headers a proxy sends.
#
# 1. Throughput: wrk, THREADS threads and CONNS connections, rotating over
#    SESSIONS warm sessions (a wrk Lua script), DURATION seconds per target
#    and round, ROUNDS rounds in rotated order; every target runs next to
#    the bare engine sent the same requests (JWTs in jwt's pairs; the bare
#    engines drop the session header, as finproxy does), in SLICES runs of
#    SLICE seconds each side interleaved (bare, target, target, bare, ...;
#    which side goes first alternates), and its ratio is taken within that
#    pair; req/s of every pair's sides, the median ratio and the spread. Also
#    the CPU time (user and system, from /proc) the target's process spent
#    per request in each run, and its ratio within the pair: steadier than
#    req/s, which moves with whatever else the machine runs. With the CPU
#    that wrk and the upstream (and Redis) spent on the same requests,
#    every ratio is predicted from CPU alone (all cores busy, req/s is
#    their time over a whole request's CPU), and the CPU per request a
#    target may spend at 0.90 of the bare engine is printed: a ratio
#    target as a budget. A line on the machine's steadiness comes first
#    (hypervisor steal, the bare engine's own spread over its runs).
# 2. Latency, open loop (test/cmd/loadgen: requests start at a constant
#    rate whatever the target does, latency counted from when a request was
#    due, so queueing shows): the bare engine and finproxy header at half
#    the bare engine's saturation rate, in LAT_PAIRS pairs, each the two
#    taking turns of LAT_SLICE seconds (p50 and p99 added, the median of
#    the pairs), then finproxy at 50, 60 and 70 % of
#    its own maximum, measured again right before them (no cliff below
#    70 %).
# 3. Cold path: 10 000 new sessions at concurrency 200 against an emulator
#    answering every call after 50 ms: total time, p50/p99, errors and the
#    emulator's peak of concurrent finAPI identity calls (bounded by
#    FINPROXY_FINAPI_CONCURRENCY, 32).
# The bare engine also runs with finproxy's heap floor (bare-floor, GC_FLOOR
# bytes, finproxy's default FINPROXY_GC_HEAP_FLOOR_BYTES, which finproxy
# gets too): each finproxy target's ratio is also printed against it, which
# is what its code costs apart from the collector's pacing.
# When nginx is installed it runs as an outside anchor in the throughput
# rounds (one worker, a fixed Bearer, keep-alive to the same upstream).
#
# finproxy runs at LOG_LEVEL (info: production's default, a line per
# request), with its per-session rate limit on (the default) and the
# new-session budget raised so that warming and the cold path are not
# refused. Bounded: every step stops by itself; loopback only.
#
# Environment: GC_FLOOR (16777216; 0: finproxy and bare-floor without the
# floor), DURATION (5), SLICE (1), SLICES (DURATION / SLICE), CONNS (32),
# THREADS (1), ROUNDS (5), SESSIONS (1000), BASE_PORT (18180; uses
# BASE_PORT+1 .. +28), LOG_LEVEL
# (info), REDIS (auto, or 0 to skip), REDIS_URL (redis://127.0.0.1:6379/13),
# LATENCY (1; 0 skips step 2), LAT_DURATION (10: seconds per open-loop
# run, each side's total in a pair), LAT_PAIRS (5: pairs of the bare engine
# and finproxy at half the bare engine's saturation), LAT_SLICE (1: seconds
# of one side's turn in a pair), COLD (1; 0 skips step 3), CALIBRATE (1; 0
# leaves out the three calibration targets: the bare engine with 2.5 µs of
# busy-waiting per request, and with 600 random bytes of a 4 MiB table
# touched per request, about as long alone, whose additions to the bare
# engine's CPU per request show what work costs a proxy under load, with
# and without memory traffic; and bare-again, a second bare engine, whose
# ratio to the first is the method's own noise).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
SLICE=${SLICE:-1}
SLICES=${SLICES:-$((DURATION / SLICE))}
((SLICES >= 1)) || { echo "SLICES must be at least 1 (DURATION ${DURATION}s, SLICE ${SLICE}s)" >&2; exit 2; }
LAT_DURATION=${LAT_DURATION:-10}
LAT_PAIRS=${LAT_PAIRS:-5}
LAT_SLICE=${LAT_SLICE:-1}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-5}
SESSIONS=${SESSIONS:-1000}
BASE_PORT=${BASE_PORT:-18180}
LOG_LEVEL=${LOG_LEVEL:-info}
REDIS=${REDIS:-auto}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/13}
LATENCY=${LATENCY:-1}
COLD=${COLD:-1}
CALIBRATE=${CALIBRATE:-1}
GC_FLOOR=${GC_FLOOR:-16777216}
unset GOGC # the runtime's default pacing for the bare engine; finproxy's floor as configured
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
make -s build
go build -o bin/bareproxy ./test/cmd/bareproxy
go build -o bin/loadgen ./test/cmd/loadgen

port() { echo $((BASE_PORT + $1)); }
EMU=127.0.0.1:$(port 1) PCTL=127.0.0.1:$(port 2) UP=127.0.0.1:$(port 3)
SLOW=127.0.0.1:$(port 4) SLOWPC=127.0.0.1:$(port 5)
BARE=127.0.0.1:$(port 10)

if [[ $REDIS != 0 ]] && command -v redis-cli >/dev/null && redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG; then
  REDIS=1
else
  [[ $REDIS == 0 ]] || echo "Redis does not answer at $REDIS_URL: skipping the Redis store" >&2
  REDIS=0
fi
REDIS_PREFIX="finproxy-bench-$$-$(date +%s):"

# A port already in use would have us measure somebody else's process.
for p in $(seq "$(port 1)" "$(port 28)"); do
  if [[ -n $(ss -Hltn "sport = :$p") ]]; then
    echo "port $p is in use; set BASE_PORT to a free range" >&2
    exit 1
  fi
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $REDIS == 1 ]]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A pid_of
start() { # name command...
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  pid_of[$name]=$!
}
await() { # name url: up to 10 s for url to answer 2xx
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not come up ($2); its log:" >&2
  cat "$work/$1.log" >&2
  exit 1
}

start emulator ./bin/finapi-emulator -addr $EMU -processctl-addr $PCTL -echo-addr "" -fixed-addr $UP -client-id bench -client-secret bench-secret
# The bare engines drop the session header, as finproxy does: the upstream
# gets the same requests from all of them.
start bare ./bin/bareproxy -addr $BARE -target http://$UP -drop X-Session-Id
start bare-floor ./bin/bareproxy -addr 127.0.0.1:$(port 27) -target http://$UP -drop X-Session-Id -gc-floor "$GC_FLOOR"
if [[ $CALIBRATE == 1 ]]; then
  start bare-spin ./bin/bareproxy -addr 127.0.0.1:$(port 25) -target http://$UP -drop X-Session-Id -spin 2500ns
  start bare-touch ./bin/bareproxy -addr 127.0.0.1:$(port 26) -target http://$UP -drop X-Session-Id -touch 600
  # The same bare engine again: its ratio to the bare engine is the
  # method's own noise (1.00 but for the machine).
  start bare-again ./bin/bareproxy -addr "127.0.0.1:$(port 28)" -target "http://$UP" -drop X-Session-Id
fi

HMAC=bench-jwt-hmac-secret-0123456789abcdef0123
common=(FINPROXY_PROCESSCTL_URL=http://$PCTL FINPROXY_ROUTES=/fast=http://$UP
        FINPROXY_CLIENT_ID=bench FINPROXY_CLIENT_SECRET=bench-secret
        FINPROXY_IDENTITY_SECRET=bench-identity-secret-0123456789abcdef0123
        FINPROXY_NEW_SESSION_RATE=100000 FINPROXY_NEW_SESSION_BURST=100000
        FINPROXY_LOG_LEVEL=$LOG_LEVEL FINPROXY_GC_HEAP_FLOOR_BYTES=$GC_FLOOR)
finproxy() { # name listen-offset env...
  local name=$1 off=$2
  shift 2
  start "$name" env "${common[@]}" FINPROXY_LISTEN_ADDR=127.0.0.1:$(port "$off") \
    FINPROXY_ADMIN_ADDR=127.0.0.1:$(port $((off + 1))) "$@" ./bin/finproxy
}
finproxy header 11 FINPROXY_ACCESS_URL=http://$EMU
# The same at log level warn (no line per request): header against it is
# what the request log costs.
finproxy header-nolog 23 FINPROXY_ACCESS_URL=http://$EMU FINPROXY_LOG_LEVEL=warn
finproxy jwt 13 FINPROXY_ACCESS_URL=http://$EMU FINPROXY_SESSION_AUTH=jwt FINPROXY_JWT_HMAC_SECRET=$HMAC FINPROXY_JWT_ISSUER=bench
if [[ $REDIS == 1 ]]; then
  redis=(FINPROXY_ACCESS_URL=http://$EMU FINPROXY_STORE=redis FINPROXY_REDIS_URL=$REDIS_URL FINPROXY_REDIS_PREFIX=$REDIS_PREFIX)
  finproxy redis 15 "${redis[@]}"
  finproxy redis-noL1 17 "${redis[@]}" FINPROXY_REDIS_L1_TTL=0
fi

await emulator http://$UP/
await bare http://$BARE/
await bare-floor http://127.0.0.1:$(port 27)/
if [[ $CALIBRATE == 1 ]]; then
  await bare-spin http://127.0.0.1:$(port 25)/
  await bare-touch http://127.0.0.1:$(port 26)/
  await bare-again "http://127.0.0.1:$(port 28)/"
fi
await header http://127.0.0.1:$(port 12)/readyz
await header-nolog http://127.0.0.1:$(port 24)/readyz
await jwt http://127.0.0.1:$(port 14)/readyz
if [[ $REDIS == 1 ]]; then
  await redis http://127.0.0.1:$(port 16)/readyz
  await redis-noL1 http://127.0.0.1:$(port 18)/readyz
fi

# Sessions: SESSIONS header-mode ids, and as many JWTs.
./bin/loadgen jwts -hmac "$HMAC" -issuer bench -n "$SESSIONS" >"$work/jwts"
for ((i = 0; i < SESSIONS; i++)); do printf 'bench-session-%06d\n' "$i"; done >"$work/sessions"

# name|url|sessions file, the baseline first.
targets=("bare|http://$BARE/api/v2/accounts|$work/sessions"
         "header|http://127.0.0.1:$(port 11)/fast/api/v2/accounts|$work/sessions"
         "header-nolog|http://127.0.0.1:$(port 23)/fast/api/v2/accounts|$work/sessions"
         "jwt|http://127.0.0.1:$(port 13)/fast/api/v2/accounts|$work/jwts"
         "bare-floor|http://127.0.0.1:$(port 27)/api/v2/accounts|$work/sessions")
if command -v nginx >/dev/null; then
  # An outside anchor: nginx, one worker, a fixed Bearer, keep-alive to the
  # same upstream.
  NGINX=127.0.0.1:$(port 21)
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream fixed { server $UP; keepalive 64; }
  server {
    listen $NGINX;
    location / {
      proxy_pass http://fixed;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer fixed-bench-token";
    }
  }
}
CONF
  start nginx nginx -c "$work/nginx.conf" -p "$work/nginx"
  await nginx "http://$NGINX/api/v2/accounts"
  pid_of[nginx]=$(pgrep -P "${pid_of[nginx]}" | head -1) # its one worker serves the requests
  targets+=("nginx|http://$NGINX/api/v2/accounts|$work/sessions")
fi
if [[ $CALIBRATE == 1 ]]; then
  targets+=("bare-spin|http://127.0.0.1:$(port 25)/api/v2/accounts|$work/sessions"
            "bare-touch|http://127.0.0.1:$(port 26)/api/v2/accounts|$work/sessions"
            "bare-again|http://127.0.0.1:$(port 28)/api/v2/accounts|$work/sessions")
fi
if [[ $REDIS == 1 ]]; then
  targets+=("redis|http://127.0.0.1:$(port 15)/fast/api/v2/accounts|$work/sessions"
            "redis-noL1|http://127.0.0.1:$(port 17)/fast/api/v2/accounts|$work/sessions")
fi

# Warm every session on every target (creates the finAPI users).
for t in "${targets[@]}"; do
  IFS='|' read -r name url file <<<"$t"
  out=$(./bin/loadgen open -url "$url" -session-file "$file" -rate 1000 -duration $((SESSIONS / 1000 + 1))s -warmup 0 -conns 200)
  grep -q ' failed=0 dropped=0 ' <<<"$out" || { echo "warming $name failed: $out" >&2; exit 1; }
done

declare -A rps cpu side
# The Redis server the store uses, by its own word (not the first
# redis-server process found: a test suite may run others).
if [[ $REDIS == 1 ]]; then
  REDIS_PID=$(redis-cli -u "$REDIS_URL" info server | awk -F: '/^process_id:/ {print $2 + 0}')
  [[ -r /proc/${REDIS_PID:-0}/stat ]] || REDIS_PID=""
fi
failed=0
TICK=$(getconf CLK_TCK)
# cputime pid: the CPU time (user and system, in clock ticks) of the process,
# all its threads (not its children); the comm field may hold spaces.
cputime() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# sidetime: the CPU time of the upstream (the emulator) and, when the Redis
# store is measured, the Redis server: the processes besides wrk that
# every request also costs.
sidetime() {
  local t
  t=$(cputime "${pid_of[emulator]}")
  if [[ -n ${REDIS_PID:-} ]]; then t=$((t + $(cputime "$REDIS_PID"))); fi
  echo "$t"
}
# perreq ticks0 ticks1 n: clock ticks spent between two readings, in µs per
# request of n.
perreq() { awk -v a="$1" -v b="$2" -v n="$3" -v t="$TICK" 'BEGIN {printf "%.1f", (b - a) / t * 1e6 / n}'; }
declare -A tot_n tot_t tot_c tot_u tot_w
# slicerun key url file pid seconds: one wrk run, added to key's totals
# (requests, the seconds wrk measured them in, the CPU ticks of the
# process and of the side processes, wrk's own CPU seconds).
slicerun() {
  local out r n non2xx sockerr c0 c1 u0 u1 TIMEFORMAT='%U %S'
  c0=$(cputime "$4") u0=$(sidetime)
  { time SESSIONS_FILE=$3 wrk -t"$THREADS" -c"$CONNS" -d"$5s" -s scripts/rotate.lua "$2" >"$work/wrk.out"; } 2>"$work/wrk.time"
  c1=$(cputime "$4") u1=$(sidetime)
  out=$(<"$work/wrk.out")
  r=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
  sockerr=$(awk -F'Socket errors: ' '/Socket errors/ {print $2}' <<<"$out")
  # Error answers are cheap: a run with any is not a measurement.
  if [[ -n $non2xx || -n $sockerr ]]; then
    failed=1
    errs[$1]="${errs[$1]:-}${non2xx:+   non-2xx $non2xx}${sockerr:+   socket errors: $sockerr}"
  fi
  tot_n[$1]=$((${tot_n[$1]:-0} + n))
  tot_t[$1]=$(awk -v a="${tot_t[$1]:-0}" -v n="$n" -v r="$r" 'BEGIN {printf "%.6f", a + n / r}')
  tot_c[$1]=$((${tot_c[$1]:-0} + c1 - c0))
  tot_u[$1]=$((${tot_u[$1]:-0} + u1 - u0))
  tot_w[$1]=$(awk -v a="${tot_w[$1]:-0}" '{printf "%.6f", a + $1 + $2}' "$work/wrk.time")
}
# report key name: key's slices as one run: prints it, sets rps[key],
# cpu[key] (the process's CPU per request) and side[key] (what wrk, the
# upstream and Redis spent per request).
report() {
  local n=${tot_n[$1]}
  rps[$1]=$(awk -v n="$n" -v t="${tot_t[$1]}" 'BEGIN {printf "%.2f", n / t}')
  cpu[$1]=$(perreq 0 "${tot_c[$1]}" "$n")
  side[$1]=$(awk -v w="${tot_w[$1]}" -v u="$(perreq 0 "${tot_u[$1]}" "$n")" -v n="$n" 'BEGIN {printf "%.1f", w * 1e6 / n + u}')
  printf '  %-12s %10s req/s %7s µs CPU/req%s\n' "$2" "${rps[$1]}" "${cpu[$1]}" "${errs[$1]:-}"
}
declare -A errs
wrkrun() { # key name url file pid: one wrk run of DURATION seconds; prints it, sets rps[key], cpu[key] and side[key]
  slicerun "$1" "$3" "$4" "$5" "$DURATION"
  report "$1" "$2"
}

# cpustat: the machine's CPU time so far, all cores, in clock ticks: "total
# steal" (steal: time the hypervisor gave this machine's CPUs to others).
cpustat() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9; exit}' /proc/stat; }
read -r total0 steal0 < <(cpustat)

# Each target is measured right next to the bare engine (a pair), and its
# ratio is taken within the pair: this machine's speed drifts by tens of
# per cent over a minute, which a ratio to a baseline measured a minute
# earlier would carry, and swings by several per cent within seconds. So a
# pair is SLICES runs of SLICE seconds each side, interleaved in the order
# bare, target, target, bare, bare, ... (or target first: it flips from
# round to round), and each side's runs are summed: a drift over the pair
# cancels, and a swing of a second or two falls on both sides alike.
echo "== throughput: wrk -t$THREADS -c$CONNS, $SESSIONS sessions rotating, $(nproc) cores, loopback, $ROUNDS rounds of pairs (the bare engine next to each target, $SLICES runs of ${SLICE}s each side, interleaved), finproxy log level $LOG_LEVEL"
bare_url=${targets[0]#*|}
bare_url=${bare_url%%|*}
n=${#targets[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  echo " round $round"
  for ((i = 1; i < n; i++)); do
    j=$(((i + round - 2) % (n - 1) + 1)) # the target; which side goes first flips every round
    IFS='|' read -r name url file <<<"${targets[$j]}"
    # The bare runs of the pair get the target's requests (jwt's carry a
    # JWT where the others carry a 20-character session id): the same
    # bytes to receive and parse.
    for ((sl = 0; sl < SLICES; sl++)); do
      if (((round + j + sl) % 2)); then
        slicerun "$round:$name:bare" "$bare_url" "$file" "${pid_of[bare]}" "$SLICE"
        slicerun "$round:$name" "$url" "$file" "${pid_of[$name]}" "$SLICE"
      else
        slicerun "$round:$name" "$url" "$file" "${pid_of[$name]}" "$SLICE"
        slicerun "$round:$name:bare" "$bare_url" "$file" "${pid_of[bare]}" "$SLICE"
      fi
    done
    if (((round + j) % 2)); then
      report "$round:$name:bare" bare
      report "$round:$name" "$name"
    else
      report "$round:$name" "$name"
      report "$round:$name:bare" bare
    fi
  done
done

read -r total1 steal1 < <(cpustat)

median() { sort -n | awk '{v[NR]=$1} END {print NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
# medspread: the numbers on stdin as "median (min–max)".
medspread() {
  sort -g | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    printf "%.2f (%.2f–%.2f)", m, v[1], v[NR]}'
}
# perround table a b op: for every round, table[round:a] op table[round:b]
# (op "/" or "-"; table rps or cpu); prints "median (min–max)".
perround() {
  local -n t=$1
  for ((round = 1; round <= ROUNDS; round++)); do
    awk -v a="${t[$round:$2]}" -v b="${t[$round:$3]}" -v op="$4" 'BEGIN {printf "%.3f\n", op == "-" ? a - b : a / b}'
  done | medspread
}
ratio() { perround rps "$1" "$2" /; }
# runsof table name: name's runs in table, one per line (bare: all its
# runs); medof: their median.
runsof() {
  local -n t=$1
  for k in "${!t[@]}"; do
    if [[ $2 == bare && $k == *:bare ]] || [[ $k == *:"$2" ]]; then echo "${t[$k]}"; fi
  done
}
medof() { runsof "$@" | median; }
# How steady the machine was: every ratio below is taken within a pair, but
# a machine whose speed swings within a run makes every spread wide.
bare_runs=$(runsof rps bare | sort -g)
printf ' machine: steal %s %% of CPU time during these runs; the bare engine over its %d runs: %s–%s req/s\n' \
  "$(awk -v t=$((total1 - total0)) -v s=$((steal1 - steal0)) 'BEGIN {printf "%.1f", t ? 100 * s / t : 0}')" \
  "$(wc -l <<<"$bare_runs")" "$(head -1 <<<"$bare_runs")" "$(tail -1 <<<"$bare_runs")"
echo " ratio to the bare engine of the same pair, median of the rounds (spread):"
for t in "${targets[@]:1}"; do
  IFS='|' read -r name _ _ <<<"$t"
  printf '  %-12s %s\n' "$name" "$(ratio "$name" "$name:bare")"
done
# What of each finproxy target's ratio is its code: its ratio over
# bare-floor's in the same round (both against their pairs' bare runs).
echo " against the bare engine with the same heap floor ($GC_FLOOR bytes): each target's ratio over bare-floor's of the same round, median (spread):"
for t in "${targets[@]:1}"; do
  IFS='|' read -r name _ _ <<<"$t"
  case $name in header* | jwt | redis*) ;; *) continue ;; esac
  printf '  %-12s %s\n' "$name" "$(for ((round = 1; round <= ROUNDS; round++)); do
    awk -v a="${rps[$round:$name]}" -v ab="${rps[$round:$name:bare]}" -v f="${rps[$round:bare-floor]}" -v fb="${rps[$round:bare-floor:bare]}" \
      'BEGIN {printf "%.3f\n", (a / ab) / (f / fb)}'
  done | medspread)"
done
# CPU time per request is steadier than req/s on this machine: what a
# process spends on a request moves far less with the neighbours' load
# than how many requests it gets through.
echo " CPU per request of the proxy's process (user and system; the Redis server counted below, not here): median µs, and the ratio to the bare engine of the same pair, median (spread):"
printf '  %-12s %6s µs\n' bare "$(medof cpu bare | awk '{printf "%.1f", $1}')"
for t in "${targets[@]:1}"; do
  IFS='|' read -r name _ _ <<<"$t"
  printf '  %-12s %6s µs   %s\n' "$name" "$(medof cpu "$name" | awk '{printf "%.1f", $1}')" "$(perround cpu "$name" "$name:bare" /)"
done
# All cores busy, req/s is the cores' time over the CPU time of a whole
# request: the proxy's, wrk's and the upstream's (and Redis'). So a
# target's ratio should follow from CPU alone, (side + bare) / (side +
# target) within its pair; when it does, a ratio target is a CPU budget.
echo " the same from CPU: wrk and the upstream (and the Redis server) per request, median µs of the bare runs; each target's ratio predicted as (their CPU + the bare engine's) / (their CPU + the target's) within its pair, median (spread):"
printf '  %-12s %6s µs\n' "wrk+upstream" "$(medof side bare | awk '{printf "%.1f", $1}')"
for t in "${targets[@]:1}"; do
  IFS='|' read -r name _ _ <<<"$t"
  printf '  %-12s %s\n' "$name" "$(for ((round = 1; round <= ROUNDS; round++)); do
    awk -v b="${cpu[$round:$name:bare]}" -v sb="${side[$round:$name:bare]}" -v c="${cpu[$round:$name]}" -v sc="${side[$round:$name]}" \
      'BEGIN {printf "%.3f\n", (sb + b) / (sc + c)}'
  done | medspread)"
done
budget=$(awk -v s="$(medof side bare)" -v b="$(medof cpu bare)" 'BEGIN {printf "%.1f", (s + b) / 0.90 - s}')
echo "  at 0.90 of the bare engine a target may spend $budget µs of CPU per request (the bare engine $(medof cpu bare | awk '{printf "%.1f", $1}'))"
if [[ $CALIBRATE == 1 ]]; then
  # What each calibration target adds to the bare engine's CPU per request,
  # within its pairs.
  added() { perround cpu "$1" "$1:bare" -; }
  echo " calibration: what synthetic work of about 2.5 µs (alone) adds to the bare engine's CPU per request under this load, median µs (spread):"
  printf '  %-12s %s   (busy-waiting 2.5 µs, no memory traffic)\n' bare-spin "$(added bare-spin)"
  printf '  %-12s %s   (600 random bytes of a 4 MiB table; alone: go test -bench Touch ./test/cmd/bareproxy/)\n' bare-touch "$(added bare-touch)"
fi
echo " the request log's cost: header (log level $LOG_LEVEL) over header-nolog (warn: no line per request), each against its pair's bare run, median (spread):"
logcost=$(for ((round = 1; round <= ROUNDS; round++)); do
  awk -v h="${rps[$round:header]}" -v hb="${rps[$round:header:bare]}" \
    -v n="${rps[$round:header-nolog]}" -v nb="${rps[$round:header-nolog:bare]}" 'BEGIN {printf "%.6f\n", (h/hb) / (n/nb)}'
done | medspread)
printf '  %-12s %s\n' header "$logcost"
# What the heap floor costs in memory: every proxy's peak resident set.
printf ' peak resident set (VmHWM) of each proxy process, MiB:'
for name in bare "${targets[@]:1}"; do
  name=${name%%|*}
  printf ' %s %s' "$name" "$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/${pid_of[$name]}/status" 2>/dev/null)"
done
echo

if [[ $LATENCY == 1 ]]; then
  bare_max=$(medof rps bare)
  half=$(awk -v m="$bare_max" 'BEGIN {printf "%d", m / 2}')
  echo "== latency, open loop, ${LAT_DURATION}s each (latency from when each request was due)"
  open() { # label url rate: prints the run
    local out
    out=$(./bin/loadgen open -url "$2" -session-file "$work/sessions" -rate "$3" -duration "${LAT_DURATION}s" -conns 64)
    echo "  $1: $(grep -v '^RESULT' <<<"$out")"
    grep -q ' failed=0 dropped=0 ' <<<"$out" || failed=1
  }
  # LAT_PAIRS pairs at half the bare engine's saturation. In a pair the two
  # take turns of LAT_SLICE seconds (bare, finproxy, finproxy, bare, ...)
  # until each has had LAT_DURATION seconds, as for throughput: a tail
  # latency measured after another is mostly the machine's own stalls,
  # which turns share out. What finproxy adds is taken within each pair,
  # of each side's turns summed, and the median of the pairs is printed.
  added50=() added99=()
  ((LAT_PAIRS >= 1)) || { echo "LAT_PAIRS must be at least 1" >&2; exit 2; }
  fp_url="http://127.0.0.1:$(port 11)/fast/api/v2/accounts"
  for ((k = 1; k <= LAT_PAIRS; k++)); do
    out=$(./bin/loadgen open -url "http://$BARE/api/v2/accounts" -compare "$fp_url" -slice "${LAT_SLICE}s" \
      -session-file "$work/sessions" -rate "$half" -duration "${LAT_DURATION}s" -conns 64)
    echo "  pair $k, bare and finproxy header in turns of ${LAT_SLICE}s at half the bare engine's saturation ($half/s):"
    grep -v '^RESULT\|^ADDED\|^added' <<<"$out" | sed -e "s|^http://$BARE/api/v2/accounts|bare|" -e "s|^$fp_url|finproxy header|" -e 's/^/    /'
    (($(grep -c '^RESULT .* failed=0 dropped=0 ' <<<"$out") == 2)) || failed=1
    added50+=("$(sed -nE 's/^ADDED p50=([-0-9.]+) .*/\1/p' <<<"$out")")
    added99+=("$(sed -nE 's/^ADDED .* p99=([-0-9.]+)$/\1/p' <<<"$out")")
    printf '  pair %d: added by finproxy p50 %+.2f ms, p99 %+.2f ms\n' "$k" "${added50[-1]}" "${added99[-1]}"
  done
  spread() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    printf "%+.2f ms (%+.2f to %+.2f)", m, v[1], v[NR]}'; }
  echo "  added by finproxy at $half/s, median of $LAT_PAIRS pairs (spread): p50 $(spread "${added50[@]}"), p99 $(spread "${added99[@]}")"
  # finproxy's maximum, measured again right before the runs that take
  # shares of it: the throughput rounds' median is minutes old, and on a
  # machine whose speed drifts by half a share taken from it can be above
  # what finproxy gets now (run 11 in docs/performance.md).
  echo "  finproxy header's maximum now (wrk as above):"
  wrkrun "header@latency" header "http://127.0.0.1:$(port 11)/fast/api/v2/accounts" "$work/sessions" "${pid_of[header]}"
  header_max=${rps[header@latency]}
  for share in 50 60 70; do
    r=$(awk -v m="$header_max" -v s=$share 'BEGIN {printf "%d", m * s / 100}')
    open "finproxy header at $share % of its maximum ($r/s)" "http://127.0.0.1:$(port 11)/fast/api/v2/accounts" "$r"
  done
fi

if [[ $COLD == 1 ]]; then
  echo "== cold path: 10000 new sessions, concurrency 200, every finAPI call answered after 50 ms"
  start slow-emulator ./bin/finapi-emulator -addr $SLOW -processctl-addr $SLOWPC -echo-addr "" \
    -client-id bench -client-secret bench-secret -latency "/api/=50ms"
  finproxy cold 19 FINPROXY_ACCESS_URL=http://$SLOW FINPROXY_PROCESSCTL_URL=http://$SLOWPC
  await slow-emulator "http://$SLOW/_emulator/stats"
  await cold http://127.0.0.1:$(port 20)/readyz
  out=$(./bin/loadgen cold -url "http://127.0.0.1:$(port 19)/api/v2/accounts" -n 10000 -concurrency 200)
  grep -v '^RESULT' <<<"$out" | sed 's/^/  /'
  grep -q ' failed=0 ' <<<"$out" || failed=1
  stats=$(curl -fsS "http://$SLOW/_emulator/stats")
  echo "  emulator: $stats (peak_concurrency: identity calls at once; FINPROXY_FINAPI_CONCURRENCY is 32)"
fi

command -v nginx >/dev/null || echo "== no nginx anchor: nginx is not installed (apt-get install nginx-light)"

if ((failed)); then
  echo "some requests failed (non-2xx, socket errors or dropped): these figures are not measurements" >&2
  exit 1
fi
