#!/usr/bin/env bash
# profile-proxy.sh: where a request's CPU goes, finproxy against the bare
# engine. Builds finproxy (make build) and test/cmd/bareproxy, starts the
# emulator's fixed upstream, the bare engine and finproxy (MODE: header, the
# default; jwt with HS256 tokens; or redis, header sessions with the Redis
# store and its L1 at REDIS_URL, redis://127.0.0.1:6379/13 by default, its
# keys deleted at the end; otherwise the memory store; log level info, 1000
# sessions rotating) on loopback, then for each: wrk -t1 -c32 for 10 s while
# the proxy's own CPU time (utime+stime from /proc) is read before and
# after, printed as CPU per request with the collections the process ran
# per 1000 requests; then a CPU profile of each under the
# same load (PROFILE_SECONDS, 20), kept in OUT (default: a new temp dir) for
# `go tool pprof` with wrk's output of that run, and the request log's share
# of finproxy's CPU from it. About a minute and a half; stops by itself.
# Needs wrk (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
MODE=${MODE:-header}
HMAC=bench-jwt-hmac-secret-0123456789abcdef0123
case $MODE in
header) modeenv=() ;;
jwt) modeenv=(FINPROXY_SESSION_AUTH=jwt FINPROXY_JWT_HMAC_SECRET=$HMAC FINPROXY_JWT_ISSUER=bench) ;;
redis)
  REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/13}
  REDIS_PREFIX="finproxy-profile-$$-$(date +%s):"
  redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG || { echo "MODE=redis needs Redis at $REDIS_URL" >&2; exit 2; }
  modeenv=(FINPROXY_STORE=redis FINPROXY_REDIS_URL=$REDIS_URL FINPROXY_REDIS_PREFIX=$REDIS_PREFIX)
  ;;
*) echo "MODE must be header, jwt or redis, not $MODE" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
BASE=${BASE_PORT:-28180}
EMU=127.0.0.1:$((BASE + 1)) PCTL=127.0.0.1:$((BASE + 2)) UP=127.0.0.1:$((BASE + 3))
BARE=127.0.0.1:$((BASE + 10)) BAREPPROF=127.0.0.1:$((BASE + 13))
FP=127.0.0.1:$((BASE + 11)) FPADMIN=127.0.0.1:$((BASE + 12))
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y -qq wrk >/dev/null; }
make -s build >/dev/null
go build -o bin/bareproxy ./test/cmd/bareproxy
go build -o bin/loadgen ./test/cmd/loadgen
for p in $(seq $((BASE + 1)) $((BASE + 13))); do
  [[ -z $(ss -Hltn "sport = :$p") ]] || { echo "port $p is in use; set BASE_PORT to a free range" >&2; exit 1; }
done
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ $MODE == redis ]]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "${REDIS_PREFIX}*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
  fi
}
trap cleanup EXIT
./bin/finapi-emulator -addr $EMU -processctl-addr $PCTL -echo-addr "" -fixed-addr $UP -client-id bench -client-secret bench-secret >"$OUT/emulator.log" 2>&1 &
pids+=($!)
./bin/bareproxy -addr $BARE -target http://$UP -drop X-Session-Id -pprof $BAREPPROF >"$OUT/bare.log" 2>&1 &
bare=$!
pids+=($bare)
env FINPROXY_ACCESS_URL=http://$EMU FINPROXY_PROCESSCTL_URL=http://$PCTL FINPROXY_ROUTES=/fast=http://$UP \
  FINPROXY_CLIENT_ID=bench FINPROXY_CLIENT_SECRET=bench-secret FINPROXY_IDENTITY_SECRET=bench-identity-secret-0123456789abcdef0123 \
  FINPROXY_NEW_SESSION_RATE=100000 FINPROXY_NEW_SESSION_BURST=100000 FINPROXY_LOG_LEVEL=info FINPROXY_PPROF=true \
  FINPROXY_LISTEN_ADDR=$FP FINPROXY_ADMIN_ADDR=$FPADMIN "${modeenv[@]}" ./bin/finproxy >"$OUT/finproxy.log" 2>&1 &
fp=$!
pids+=($fp)
for _ in $(seq 100); do curl -fs -o /dev/null "http://$FPADMIN/readyz" && curl -fs -o /dev/null "http://$BARE/" && break; sleep 0.1; done
if [[ $MODE == jwt ]]; then
  ./bin/loadgen jwts -hmac "$HMAC" -issuer bench -n 1000 >"$OUT/sessions"
else
  for ((i = 0; i < 1000; i++)); do printf 'bench-session-%06d\n' "$i"; done >"$OUT/sessions"
fi
cat >"$OUT/rotate.lua" <<'LUA'
local sessions = {}
for line in io.lines(os.getenv("SESSIONS_FILE")) do sessions[#sessions + 1] = line end
local i = 0
request = function()
  i = i % #sessions + 1
  return wrk.format("GET", nil, { ["X-Session-Id"] = sessions[i] })
end
LUA
export SESSIONS_FILE=$OUT/sessions
run() { wrk -t1 -c32 -d"$2" -s "$OUT/rotate.lua" "http://$1/fast/x"; }
run $FP 5s >/dev/null # warm: every session's token, both connection pools
run $BARE 2s >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
# The collections a process has run, from its pprof heap page (the
# runtime's MemStats at the end of it).
gcs() { curl -fsS "http://$1/debug/pprof/heap?debug=1" | awk '$2 == "NumGC" {print $4}'; }
tick=$(getconf CLK_TCK)
echo "== CPU per request (wrk -t1 -c32 -d10s, 1000 $MODE sessions rotating, log level info)"
for t in bare:$bare:$BARE:$BAREPPROF finproxy:$fp:$FP:$FPADMIN; do
  IFS=: read -r name pid host port phost pport <<<"$t"
  c0=$(cpu "$pid") g0=$(gcs "$phost:$pport")
  out=$(run "$host:$port" 10s)
  c1=$(cpu "$pid") g1=$(gcs "$phost:$pport")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  printf '  %-9s %9s req/s  %6.1f µs of its own CPU per request, %5.2f collections per 1000 requests\n' "$name" "$rate" \
    "$(bc -l <<<"($c1 - $c0) / $tick / $n * 1000000")" "$(bc -l <<<"($g1 - $g0) * 1000 / $n")"
done
P=${PROFILE_SECONDS:-20}
echo "== CPU profiles under the same load ($P s each): $OUT/bare.prof, $OUT/finproxy.prof"
for t in bare:$BARE:$BAREPPROF finproxy:$FP:$FPADMIN; do
  IFS=: read -r name host port phost pport <<<"$t"
  run "$host:$port" $((P + 3))s >"$OUT/$name.wrk" &
  load=$!
  sleep 1
  curl -fsS -o "$OUT/$name.prof" "http://$phost:$pport/debug/pprof/profile?seconds=$P"
  wait $load
done
echo "  go tool pprof -top -cum bin/finproxy $OUT/finproxy.prof"
# The request log's share of finproxy's CPU, from the profile (a share
# within one process and one run, which the machine's noise moves far less
# than req/s): building the line (server.finish without the metrics it
# also records) and the writer goroutine (redaction, the write).
top=$(go tool pprof -top -cum bin/finproxy "$OUT/finproxy.prof" 2>/dev/null)
share() { awk -v f="$1" '$6 == f {sub("%", "", $5); print $5; found=1} END {if (!found) print 0}' <<<"$top"; }
build=$(share 'github.com/finproxy/finproxy/proxy.(*server).finish')
observe=$(share 'github.com/finproxy/finproxy/metrics.(*Metrics).Request')
writer=$(share 'github.com/finproxy/finproxy/logbuf.(*Writer).run')
awk -v b="$build" -v o="$observe" -v w="$writer" 'BEGIN {
  printf "== the request log: %.1f %% of finproxy'"'"'s CPU (building the line %.1f %%, the writer goroutine %.1f %%)\n", b - o + w, b - o, w }'
