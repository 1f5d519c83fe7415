#!/usr/bin/env bash
# Load benchmark on loopback, all in one run so the ratios are fair on a
# noisy machine: wrk against a bare httputil.ReverseProxy (the baseline) and
# against finproxy in header and jwt session mode, each in front of the same
# upstream (the emulator's echo server). When Redis answers at REDIS_URL,
# finproxy in header mode with the Redis store is measured too, with its
# in-memory L1 (the default, 2s) and without it (every request reads Redis),
# and compared with the memory store.
#
# Every round runs each target once, in a rotated order, and each figure is
# a ratio to a baseline measured in the same round; with ROUNDS > 1 the
# median ratio is printed as well. Bounded: DURATION seconds per target and
# round (default 10), loopback only.
#
# Environment: DURATION (10), CONNS (50), THREADS (2), ROUNDS (1),
# BASE_PORT (18180; the run uses BASE_PORT+1 .. BASE_PORT+18),
# LOG_LEVEL (warn: no request log lines; "info" is production's default),
# REDIS (auto, or 0 to skip), REDIS_URL (redis://127.0.0.1:6379/13).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
BASE_PORT=${BASE_PORT:-18180}
LOG_LEVEL=${LOG_LEVEL:-warn}
REDIS=${REDIS:-auto}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/13}
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
make -s build
go build -o bin/bareproxy ./test/cmd/bareproxy

port() { echo $((BASE_PORT + $1)); }
EMU=127.0.0.1:$(port 1) PCTL=127.0.0.1:$(port 2) ECHO=127.0.0.1:$(port 3)
BARE=127.0.0.1:$(port 10)

if [[ $REDIS != 0 ]] && command -v redis-cli >/dev/null && redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG; then
  REDIS=1
else
  [[ $REDIS == 0 ]] || echo "Redis does not answer at $REDIS_URL: skipping the Redis store" >&2
  REDIS=0
fi
REDIS_PREFIX="finproxy-bench-$$-$(date +%s):"

# A port already in use would have us measure somebody else's process.
for p in $(seq "$(port 1)" "$(port 18)"); do
  if [[ -n $(ss -Hltn "sport = :$p") ]]; then
    echo "port $p is in use; set BASE_PORT to a free range" >&2
    exit 1
  fi
done

logs=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $REDIS == 1 ]]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
  fi
  rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # name command...
  local name=$1
  shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
}
# await name url: wait up to 10s for url to answer 2xx, and for the process
# started last under name to still be ours and alive.
await() {
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not come up ($2); its log:" >&2
  cat "$logs/$1.log" >&2
  exit 1
}

start emulator ./bin/finapi-emulator -addr $EMU -processctl-addr $PCTL -echo-addr $ECHO -client-id bench -client-secret bench-secret
start bare ./bin/bareproxy -addr $BARE -target http://$ECHO

HMAC=bench-jwt-hmac-secret-0123456789abcdef0123
common=(FINPROXY_ACCESS_URL=http://$EMU FINPROXY_PROCESSCTL_URL=http://$PCTL FINPROXY_ROUTES=/fast=http://$ECHO
        FINPROXY_CLIENT_ID=bench FINPROXY_CLIENT_SECRET=bench-secret
        FINPROXY_IDENTITY_SECRET=bench-identity-secret-0123456789abcdef0123
        FINPROXY_RATE_SESSION=0 FINPROXY_LOG_LEVEL=$LOG_LEVEL FINPROXY_PPROF=true)
finproxy() { # name listen-offset env...
  local name=$1 off=$2
  shift 2
  start "$name" env "${common[@]}" FINPROXY_LISTEN_ADDR=127.0.0.1:$(port "$off") \
    FINPROXY_ADMIN_ADDR=127.0.0.1:$(port $((off + 1))) "$@" ./bin/finproxy
}
finproxy header 11
finproxy jwt 13 FINPROXY_SESSION_AUTH=jwt FINPROXY_JWT_HMAC_SECRET=$HMAC FINPROXY_JWT_ISSUER=bench
if [[ $REDIS == 1 ]]; then
  redis=(FINPROXY_STORE=redis FINPROXY_REDIS_URL=$REDIS_URL FINPROXY_REDIS_PREFIX=$REDIS_PREFIX)
  finproxy redis 15 "${redis[@]}"
  finproxy redis-nol1 17 "${redis[@]}" FINPROXY_REDIS_L1_TTL=0
fi

await emulator http://$ECHO/
await bare http://$BARE/
await header http://127.0.0.1:$(port 12)/readyz
await jwt http://127.0.0.1:$(port 14)/readyz
if [[ $REDIS == 1 ]]; then
  await redis http://127.0.0.1:$(port 16)/readyz
  await redis-nol1 http://127.0.0.1:$(port 18)/readyz
fi
for p in "${pids[@]}"; do
  kill -0 "$p" 2>/dev/null || { echo "a server exited early; logs in $logs" >&2; tail -n 5 "$logs"/*.log >&2; exit 1; }
done

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
p=$(printf '{"iss":"bench","sub":"user-1","exp":%d}' $(( $(date +%s) + 3600 )) | b64url)
s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$HMAC" -binary | b64url)
JWT="$h.$p.$s"
SESSION=bench-session-0123456789

# name|url|header, the baseline first.
targets=("bare ReverseProxy|http://$BARE/api/v2/accounts|X-Session-Id: $JWT"
         "finproxy header|http://127.0.0.1:$(port 11)/fast/api/v2/accounts|X-Session-Id: $SESSION"
         "finproxy jwt|http://127.0.0.1:$(port 13)/fast/api/v2/accounts|X-Session-Id: $JWT")
if [[ $REDIS == 1 ]]; then
  targets+=("finproxy header redis|http://127.0.0.1:$(port 15)/fast/api/v2/accounts|X-Session-Id: $SESSION"
            "finproxy header redis noL1|http://127.0.0.1:$(port 17)/fast/api/v2/accounts|X-Session-Id: $SESSION")
fi

# Warm every path once (creates the finAPI user behind each session).
for t in "${targets[@]}"; do
  IFS='|' read -r _ url hdr <<<"$t"
  curl -fsS -o /dev/null -H "$hdr" "$url"
done

declare -A rps
failed=0
run() { # round name url header
  local out r lat non2xx sockerr
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "$4" "$3")
  r=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  lat=$(awk '/Latency/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
  sockerr=$(awk -F'Socket errors: ' '/Socket errors/ {print $2}' <<<"$out")
  printf '%-28s %10s req/s   avg latency %-8s non-2xx %s%s\n' "$2" "$r" "$lat" "${non2xx:-0}" \
    "${sockerr:+   socket errors: $sockerr}" >&2
  # Error answers are cheap: a run with any is not a measurement.
  if [[ -n $non2xx || -n $sockerr ]]; then failed=1; fi
  rps[$1:$2]=$r
}

echo "wrk -t$THREADS -c$CONNS -d${DURATION}s on $(nproc) cores, loopback, $ROUNDS round(s), finproxy log level $LOG_LEVEL" >&2
n=${#targets[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  echo "round $round" >&2
  for ((i = 0; i < n; i++)); do
    IFS='|' read -r name url hdr <<<"${targets[$(((i + round - 1) % n))]}"
    run "$round" "$name" "$url" "$hdr"
  done
done

# ratio a b: a's req/s over b's, per round, then the median over rounds.
ratio() {
  local vals=()
  for ((round = 1; round <= ROUNDS; round++)); do
    vals+=("$(awk -v a="${rps[$round:$1]}" -v b="${rps[$round:$2]}" 'BEGIN {printf "%.1f", 100*a/b}')")
  done
  printf '%s\n' "${vals[@]}" | sort -n | awk '{v[NR]=$1} END {
    m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    s = ""; for (i = 1; i <= NR; i++) s = s (i > 1 ? " " : "") v[i]
    if (NR > 1) printf "%.1f%% (median of %s)", m, s; else printf "%.1f%%", m }'
}
echo "ratio to bare ReverseProxy: header $(ratio "finproxy header" "bare ReverseProxy"), jwt $(ratio "finproxy jwt" "bare ReverseProxy")"
if [[ $REDIS == 1 ]]; then
  for v in "finproxy header redis" "finproxy header redis noL1"; do
    for ((round = 1; round <= ROUNDS; round++)); do
      awk -v r="${rps[$round:$v]}" -v m="${rps[$round:finproxy header]}" -v name="${v#finproxy header }" -v round="$round" -v cores="$(nproc)" 'BEGIN {
        printf "%s store vs memory store (round %d): %.1f%% of the req/s, %+.1f%% time per request (%+.1f us of the %d-core box per request)\n",
          name, round, 100*r/m, 100*(m/r - 1), 1e6*(1/r - 1/m)*cores, cores }'
    done
    echo "${v#finproxy header } store vs memory store: $(ratio "$v" "finproxy header") of the req/s"
  done
fi
if ((failed)); then
  echo "some requests failed (non-2xx or socket errors): these figures are not measurements" >&2
  exit 1
fi
