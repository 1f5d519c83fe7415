#!/usr/bin/env bash
# The README's process-mode walk-through ("Walk-through: a GiroIdent-style
# check against the emulator"), run as written: the finAPI emulator and
# finproxy on the addresses below, each curl call checked (curl -f, grep),
# both processes stopped at the end. The lines between "README begin" and
# "README end" are the README's block with the variables at their
# defaults; curl_test.go runs this script in make test and checks the
# README against it.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-./bin}
PROXY=${PROXY:-127.0.0.1:8080}
ADMIN=${ADMIN:-127.0.0.1:9090}
ACCESS=${ACCESS:-127.0.0.1:18081}
PROCESSCTL=${PROCESSCTL:-127.0.0.1:18082}
ECHO=${ECHO:-127.0.0.1:18083}
trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT

# README begin
${BIN}/finapi-emulator -addr ${ACCESS} -processctl-addr ${PROCESSCTL} -echo-addr ${ECHO} \
  -client-id demo-client -client-secret demo-secret &
FINPROXY_DEMO=true FINPROXY_MODE=process FINPROXY_PROCESS_ID=GIRO_IDENT \
FINPROXY_ACCESS_URL=http://${ACCESS} FINPROXY_PROCESSCTL_URL=http://${PROCESSCTL} \
FINPROXY_ROUTES=/giroident=http://${ECHO} \
FINPROXY_CLIENT_ID=demo-client FINPROXY_CLIENT_SECRET=demo-secret \
FINPROXY_IDENTITY_SECRET=demo-identity-secret-not-for-production-use \
FINPROXY_LISTEN_ADDR=${PROXY} FINPROXY_ADMIN_ADDR=${ADMIN} ${BIN}/finproxy &
for _ in $(seq 150); do curl -fs -o /dev/null http://${ADMIN}/readyz && break; sleep 0.2; done  # ready, or 30 s

S='X-Session-Id: kyc-check-4711-0123456789'
curl -fsS -X POST -H "$S" http://${PROXY}/proxy/v1/session | grep '"mode":"process"'    # the process was created and exchanged once
curl -fsS -H "$S" http://${PROXY}/api/v2/accounts | grep -o '"iban":"[A-Z0-9]*"'         # Access with the process token
curl -fsS -H "$S" "http://${PROXY}/giroident/api/v1/checks?x=1" | grep -o '"requestURI":"/api/v1/checks?x=1"'  # what the echo upstream received
curl -fsS -o /dev/null -w '%{http_code}\n' -X DELETE -H "$S" http://${PROXY}/proxy/v1/session | grep -x 204  # forget the process token
kill %1 %2
# README end
