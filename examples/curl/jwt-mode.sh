#!/usr/bin/env bash
# The README's mobile-backend walk-through ("Quick start: mobile backend with
# JWT"), run as written: finproxy in jwt mode in front of the finAPI
# emulator, tokens minted with openssl as the backend's identity provider
# would, each curl call checked (curl -f, grep), both processes stopped at the
# end. The lines between "README begin" and "README end" are the README's
# block with the variables at their defaults; curl_test.go runs this script
# in make test and checks the README against it.
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
KEY=demo-jwt-hmac-secret-not-for-production-use   # the identity provider's HS256 key
FINPROXY_DEMO=true FINPROXY_ACCESS_URL=http://${ACCESS} FINPROXY_PROCESSCTL_URL=http://${PROCESSCTL} \
FINPROXY_CLIENT_ID=demo-client FINPROXY_CLIENT_SECRET=demo-secret \
FINPROXY_IDENTITY_SECRET=demo-identity-secret-not-for-production-use \
FINPROXY_SESSION_AUTH=jwt FINPROXY_JWT_HMAC_SECRET=$KEY \
FINPROXY_JWT_ISSUER=https://id.example.com FINPROXY_JWT_AUDIENCE=finproxy \
FINPROXY_LISTEN_ADDR=${PROXY} FINPROXY_ADMIN_ADDR=${ADMIN} ${BIN}/finproxy &
for _ in $(seq 150); do curl -fs -o /dev/null http://${ADMIN}/readyz && break; sleep 0.2; done  # ready, or 30 s

# jwt SUBJECT SECONDS: what the backend's identity provider hands its app user
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() {
  local h p
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"iss":"https://id.example.com","aud":"finproxy","sub":"%s","exp":%d}' "$1" $(($(date +%s) + $2)) | b64url)
  printf '%s.%s.%s' "$h" "$p" "$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$KEY" -binary | b64url)"
}
curl -fsS -H "Authorization: Bearer $(jwt alice 600)" http://${PROXY}/api/v2/accounts | grep -o '"iban":"[A-Z0-9]*"'  # alice's finAPI user, created
A1=$(curl -fsS -X POST -H "Authorization: Bearer $(jwt alice 600)" http://${PROXY}/proxy/v1/session | grep -o '"userId":"fp-[a-z0-9]*"')
A2=$(curl -fsS -X POST -H "Authorization: Bearer $(jwt alice 1200)" http://${PROXY}/proxy/v1/session | grep -o '"userId":"fp-[a-z0-9]*"')
B=$(curl -fsS -X POST -H "Authorization: Bearer $(jwt bob 600)" http://${PROXY}/proxy/v1/session | grep -o '"userId":"fp-[a-z0-9]*"')
[ "$A1" = "$A2" ] && [ "$A1" != "$B" ] && echo "one finAPI user per subject, whichever token"
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $(jwt alice 600)x" http://${PROXY}/api/v2/accounts | grep -x 401  # forged
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $(jwt alice -60)" http://${PROXY}/api/v2/accounts | grep -x 401   # expired
kill %1 %2
# README end
