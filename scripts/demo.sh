#!/usr/bin/env bash
# make demo: the finAPI emulator from test/, finproxy wired to it, and a page
# (examples/web, served by test/cmd/demoweb) on an origin of its own that
# calls finproxy from the browser. No credentials and no internet: the
# secrets below are demo values only, and FINPROXY_DEMO=true says so.
#
# Ports (all on 127.0.0.1): PORT finproxy (8080), ADMIN its admin listener
# (9090), EMUPORT the emulator's finAPI Access (18081; EMUPORT+1 its Process
# Controller, EMUPORT+2 its echo upstream), WEBPORT the page (8000).
# make demo PORT=… ADMIN=… EMUPORT=… WEBPORT=… passes them on. DEMO_BIN is
# the directory of the three binaries (bin).
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=127.0.0.1
PORT=${PORT:-8080} ADMIN=${ADMIN:-9090} EMUPORT=${EMUPORT:-18081} WEBPORT=${WEBPORT:-8000}
BIN=${DEMO_BIN:-bin}
SESSION=demo-session-0123456789

say() { echo "demo: $*" >&2; }

for v in PORT ADMIN EMUPORT WEBPORT; do
  max=65535
  [[ $v == EMUPORT ]] && max=65533 # the emulator takes EMUPORT+1 and EMUPORT+2 too
  [[ ${!v} =~ ^[0-9]+$ ]] && (( ${!v} >= 1 && ${!v} <= max )) || { say "$v=${!v} is not a port number (1-$max)"; exit 2; }
done
# port and what it is for, in the order the processes start.
ports=("$EMUPORT" "EMUPORT, the emulator's finAPI Access" "$((EMUPORT + 1))" "EMUPORT+1, the emulator's Process Controller"
  "$((EMUPORT + 2))" "EMUPORT+2, the emulator's echo upstream" "$PORT" "PORT, finproxy" "$ADMIN" "ADMIN, finproxy's admin listener"
  "$WEBPORT" "WEBPORT, the page")
# Six different ports: two processes on one port would each blame the other.
for ((i = 0; i < ${#ports[@]}; i += 2)); do
  for ((j = i + 2; j < ${#ports[@]}; j += 2)); do
    [[ ${ports[i]} != "${ports[j]}" ]] || { say "port ${ports[i]} is given twice (${ports[i+1]}; ${ports[j+1]})"; exit 2; }
  done
done

# taken: something accepts connections on the port.
taken() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# listens: process $1 itself holds a listening socket on port $2 (Linux:
# /proc; elsewhere: it runs and the port answers).
listens() {
  local pid=$1 hex inode fd
  if [[ ! -r /proc/net/tcp || ! -d /proc/$pid/fd ]]; then
    kill -0 "$pid" 2>/dev/null && taken "$2"
    return
  fi
  hex=$(printf ':%04X' "$2")
  for inode in $(awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
    for fd in /proc/"$pid"/fd/*; do
      [[ $(readlink "$fd" 2>/dev/null) == "socket:[$inode]" ]] && return 0
    done
  done
  return 1
}

bad=0
for ((i = 0; i < ${#ports[@]}; i += 2)); do
  if taken "${ports[i]}"; then
    say "port ${ports[i]} is taken (${ports[i + 1]}): something already listens on $HOST:${ports[i]}"
    bad=1
  fi
done
if ((bad)); then
  say "pick free ports: make demo PORT=… ADMIN=… EMUPORT=… WEBPORT=…"
  exit 1
fi

logs=$(mktemp -d)
pids=() names=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD…: in the background, its output on the terminal and in
# $logs/NAME (to say which port was taken should it die).
start() {
  local name=$1
  shift
  "$@" > >(tee "$logs/$name") 2>&1 &
  pids+=($!) names+=("$name")
}

# died: say why process $1 (an index) exited, and fail.
died() {
  local status=0 addrs
  wait "${pids[$1]}" || status=$?
  # tee may write the last lines well after the process exited (a loaded
  # machine): wait for a bind error there, 3 s at most.
  for _ in $(seq 1 30); do
    grep -qi 'address already in use' "$logs/${names[$1]}" 2>/dev/null && break
    sleep 0.1
  done
  addrs=$(grep -i 'address already in use' "$logs/${names[$1]}" 2>/dev/null |
    grep -oE '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+' | sort -u | sed 's/.*:\(.*\)/port \1 is taken/' | paste -sd';' - || true)
  if [[ -n $addrs ]]; then
    say "${names[$1]} exited (status $status): ${addrs//;/; } (address already in use); pick free ports: make demo PORT=… ADMIN=… EMUPORT=… WEBPORT=…"
  else
    say "${names[$1]} exited (status $status) before the demo was ready; its output is above"
  fi
  exit 1
}

start finapi-emulator "$BIN/finapi-emulator" -addr "$HOST:$EMUPORT" -processctl-addr "$HOST:$((EMUPORT + 1))" \
  -echo-addr "$HOST:$((EMUPORT + 2))" -client-id demo-client -client-secret demo-secret
start finproxy env FINPROXY_DEMO=true FINPROXY_LISTEN_ADDR="$HOST:$PORT" FINPROXY_ADMIN_ADDR="$HOST:$ADMIN" \
  FINPROXY_ACCESS_URL="http://$HOST:$EMUPORT" FINPROXY_PROCESSCTL_URL="http://$HOST:$((EMUPORT + 1))" \
  FINPROXY_ROUTES="/echo=http://$HOST:$((EMUPORT + 2))" FINPROXY_CORS_ORIGINS="http://$HOST:$WEBPORT" \
  FINPROXY_CLIENT_ID=demo-client FINPROXY_CLIENT_SECRET=demo-secret \
  FINPROXY_IDENTITY_SECRET=demo-identity-secret-not-for-production-use \
  FINPROXY_SHUTDOWN_DELAY=0s FINPROXY_LOG_FORMAT="${FINPROXY_LOG_FORMAT:-console}" "$BIN/finproxy"
start demoweb "$BIN/demoweb" -addr "$HOST:$WEBPORT" -dir examples/web -proxy "http://$HOST:$PORT"
# each process's ports, by index.
own=("$EMUPORT $((EMUPORT + 1)) $((EMUPORT + 2))" "$PORT $ADMIN" "$WEBPORT")

# ready: every process runs and listens on all of its ports itself (not an
# older instance answering there), and finproxy's /readyz says 200.
ready() {
  local i port
  for i in "${!pids[@]}"; do
    kill -0 "${pids[i]}" 2>/dev/null || died "$i"
  done
  for i in "${!pids[@]}"; do
    for port in ${own[i]}; do listens "${pids[i]}" "$port" || return 1; done
  done
  curl -fsS "http://$HOST:$ADMIN/readyz" >/dev/null 2>&1
}
ok=0
for _ in $(seq 1 300); do
  if ready; then ok=1 && break; fi
  sleep 0.1
done
((ok)) || { say "not ready within 30 s; the output above says why"; exit 1; }

cat <<MSG

finproxy is ready in front of the local finAPI emulator. Open the page:

  http://$HOST:$WEBPORT/

It calls finproxy from another origin (CORS allows exactly that one): warm-up,
the user, bank connections and accounts, an import, logout and delete, with
each call's status and X-Request-Id. Or paste this:

  curl -s -H 'X-Session-Id: $SESSION' http://$HOST:$PORT/api/v2/accounts

The first call creates the finAPI user of that session and logs it in; the
next ones use the cached token. Other things to try:

  curl -s -X POST -H 'X-Session-Id: $SESSION' http://$HOST:$PORT/proxy/v1/session
  curl -s -i http://$HOST:$PORT/api/v2/accounts                      # 401 missing_session
  curl -s -i -H 'X-Session-Id: $SESSION' http://$HOST:$PORT/api/v2/clientConfiguration   # 403 route_denied
  curl -s http://$HOST:$ADMIN/readyz

Ctrl-C stops all three.
MSG
# Until one of them exits: kill -0 rounds, not wait -n, which macOS's
# /bin/bash (3.2) lacks.
while :; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      status=0
      wait "${pids[i]}" || status=$?
      say "${names[i]} exited (status $status); stopping the others"
      exit 1
    fi
  done
  sleep 0.5
done
