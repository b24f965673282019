#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real: redis-server, prometheus (promtool
# and the server), prometheus-alertmanager (amtool, which checks deploy/alertmanager) and
# stunnel4 (the TLS terminator in front of the local broker in the transport tests: Tansu
# 0.6.0 serves no TLS itself), and chromium (the headless browser the HTML benchmark report's
# test drives through Playwright: tests/cli/test_benchmark_browser.py).
# Idempotent: does nothing when they are already there.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v stunnel4 >/dev/null 2>&1 || need+=(stunnel4)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages start their own services on install; the tests start their own servers on free ports.
for svc in redis-server prometheus prometheus-alertmanager stunnel4; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
