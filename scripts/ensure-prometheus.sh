#!/usr/bin/env bash
# Makes sure the tests have promtool and a Prometheus server (Debian's
# prometheus package): deploy/validate checks and unit-tests the alert
# rules with promtool, test/prometheus_test.go starts a server of its own.
# Installs the package when either is missing, without starting Debian's
# service unit (the tests run their own server on a port of their own).
set -euo pipefail
if command -v promtool >/dev/null && command -v prometheus >/dev/null; then exit 0; fi
echo "prometheus: installing Debian's prometheus (promtool and the server)" >&2
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  # Refuse every service start while the package installs.
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >&2
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null && command -v prometheus >/dev/null
