#!/usr/bin/env bash
# Load benchmark on loopback, all in one run so the ratios are fair on a
# noisy machine: wrk against a bare httputil.ReverseProxy (the baseline) and
# against finproxy in header and jwt session mode, each in front of the same
# upstream (the emulator's echo server). Prints req/s and the ratio to the
# baseline. Bounded: DURATION seconds per target (default 10), loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
make -s build
go build -o bin/bareproxy ./test/cmd/bareproxy

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

EMU=127.0.0.1:18181 PCTL=127.0.0.1:18182 ECHO=127.0.0.1:18183
./bin/finapi-emulator -addr $EMU -processctl-addr $PCTL -echo-addr $ECHO -client-id bench -client-secret bench-secret 2>/dev/null &
pids+=($!)
./bin/bareproxy -addr 127.0.0.1:18190 -target http://$ECHO 2>/dev/null &
pids+=($!)

HMAC=bench-jwt-hmac-secret-0123456789abcdef0123
common=(FINPROXY_ACCESS_URL=http://$EMU FINPROXY_PROCESSCTL_URL=http://$PCTL FINPROXY_ROUTES=/fast=http://$ECHO
        FINPROXY_CLIENT_ID=bench FINPROXY_CLIENT_SECRET=bench-secret
        FINPROXY_IDENTITY_SECRET=bench-identity-secret-0123456789abcdef0123
        FINPROXY_RATE_SESSION=0 FINPROXY_LOG_LEVEL=warn)
env "${common[@]}" FINPROXY_LISTEN_ADDR=127.0.0.1:18191 FINPROXY_ADMIN_ADDR=127.0.0.1:18192 ./bin/finproxy &
pids+=($!)
env "${common[@]}" FINPROXY_LISTEN_ADDR=127.0.0.1:18193 FINPROXY_ADMIN_ADDR=127.0.0.1:18194 \
    FINPROXY_SESSION_AUTH=jwt FINPROXY_JWT_HMAC_SECRET=$HMAC FINPROXY_JWT_ISSUER=bench ./bin/finproxy &
pids+=($!)

for a in 18192 18194; do
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:$a/readyz >/dev/null 2>&1 && break; sleep 0.1; done
done

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
p=$(printf '{"iss":"bench","sub":"user-1","exp":%d}' $(( $(date +%s) + 3600 )) | b64url)
s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$HMAC" -binary | b64url)
JWT="$h.$p.$s"
SESSION=bench-session-0123456789

# Warm every path once (creates the finAPI user behind each session).
curl -fsS -o /dev/null -H "X-Session-Id: $SESSION" http://127.0.0.1:18191/fast/api/v2/accounts
curl -fsS -o /dev/null -H "X-Session-Id: $JWT" http://127.0.0.1:18193/fast/api/v2/accounts

run() { # name url header
  local out rps
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H "$3" "$2")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  lat=$(awk '/Latency/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
  printf '%-26s %10s req/s   avg latency %-8s non-2xx %s\n' "$1" "$rps" "$lat" "${non2xx:-0}" >&2
  echo "$rps"
}
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s on $(nproc) cores, loopback" >&2
bare=$(run "bare ReverseProxy" http://127.0.0.1:18190/api/v2/accounts "X-Session-Id: $JWT")
hdr=$(run "finproxy header session" http://127.0.0.1:18191/fast/api/v2/accounts "X-Session-Id: $SESSION")
jwt=$(run "finproxy jwt session" http://127.0.0.1:18193/fast/api/v2/accounts "X-Session-Id: $JWT")
awk -v b="$bare" -v h="$hdr" -v j="$jwt" 'BEGIN {
  printf "ratio to bare ReverseProxy: header %.1f%%, jwt %.1f%%\n", 100*h/b, 100*j/b }'
