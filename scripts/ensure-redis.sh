#!/usr/bin/env bash
# Makes sure the tests have Redis: the redis-server binary (the outage tests
# start and kill servers of their own) and a server answering on
# 127.0.0.1:6379, unless FINPROXY_TEST_REDIS_URL names another one. Installs
# Debian's redis-server when missing.
set -euo pipefail
if ! command -v redis-server >/dev/null; then
  echo "redis: installing redis-server" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
fi
if [ -n "${FINPROXY_TEST_REDIS_URL:-}" ]; then exit 0; fi
host=127.0.0.1 port=6379
ping() { (exec 3<>/dev/tcp/$host/$port && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
if ping; then echo "redis: using $host:$port" >&2; exit 0; fi
redis-server --daemonize yes --bind 127.0.0.1 --port $port --save "" --appendonly no >&2
for _ in $(seq 1 50); do ping && { echo "redis: started on $host:$port" >&2; exit 0; }; sleep 0.1; done
echo "redis: could not start a server on $host:$port" >&2
exit 1
