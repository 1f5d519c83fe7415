#!/usr/bin/env bash
# make demo: the finAPI emulator from test/ plus finproxy wired to it. No
# credentials and no internet; the secrets below are demo values only.
set -euo pipefail
cd "$(dirname "$0")/.."
EMU_ACCESS=${EMU_ACCESS:-127.0.0.1:18081}
EMU_PROCESSCTL=${EMU_PROCESSCTL:-127.0.0.1:18082}
EMU_ECHO=${EMU_ECHO:-127.0.0.1:18083}
LISTEN=${FINPROXY_LISTEN_ADDR:-127.0.0.1:8080}
ADMIN=${FINPROXY_ADMIN_ADDR:-127.0.0.1:9090}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

./bin/finapi-emulator -addr "$EMU_ACCESS" -processctl-addr "$EMU_PROCESSCTL" -echo-addr "$EMU_ECHO" \
  -client-id demo-client -client-secret demo-secret &
pids+=($!)

FINPROXY_LISTEN_ADDR=$LISTEN FINPROXY_ADMIN_ADDR=$ADMIN \
FINPROXY_ACCESS_URL="http://$EMU_ACCESS" FINPROXY_PROCESSCTL_URL="http://$EMU_PROCESSCTL" \
FINPROXY_ROUTES="/echo=http://$EMU_ECHO" \
FINPROXY_CLIENT_ID=demo-client FINPROXY_CLIENT_SECRET=demo-secret \
FINPROXY_IDENTITY_SECRET=demo-identity-secret-not-for-production-use \
FINPROXY_DEMO=true \
FINPROXY_LOG_FORMAT=${FINPROXY_LOG_FORMAT:-console} \
  ./bin/finproxy &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$ADMIN/readyz" >/dev/null || { echo "finproxy did not become ready" >&2; exit 1; }
cat <<MSG

finproxy is ready in front of the local finAPI emulator. Paste this:

  curl -s -H 'X-Session-Id: demo-session-0123456789' http://$LISTEN/api/v2/accounts

The first call creates the finAPI user of that session and logs it in; the
next ones use the cached token. Other things to try:

  curl -s -X POST -H 'X-Session-Id: demo-session-0123456789' http://$LISTEN/proxy/v1/session
  curl -s -i http://$LISTEN/api/v2/accounts                      # 401 missing_session
  curl -s -i -H 'X-Session-Id: demo-session-0123456789' http://$LISTEN/api/v2/clientConfiguration   # 403 route_denied
  curl -s http://$ADMIN/readyz

Ctrl-C stops both.
MSG
wait -n "${pids[@]}"
