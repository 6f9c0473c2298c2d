#!/usr/bin/env bash
# Installs what socklab's tests need and a fresh machine may lack: Debian's
# netcat-openbsd and socat (real clients in tests), tshark (reads the e2e
# capture, runs the dissector tests), lua5.4 (the dissectors under Wireshark
# 4.4's Lua), and Docker Compose v2 (built from its Go module when missing).
# Idempotent: installs only what is missing. Needs root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nc >/dev/null || need+=(netcat-openbsd)
command -v socat >/dev/null || need+=(socat)
command -v tshark >/dev/null || need+=(tshark)
command -v lua5.4 >/dev/null || need+=(lua5.4) # the dissectors under Wireshark 4.4's Lua (deploy/wireshark)
command -v chromium >/dev/null || need+=(chromium) # loads the dashboard in e2e, make screenshot
command -v curl >/dev/null || need+=(curl) # e2e asks the dashboard's API
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -x deploy/install-compose.sh ] && command -v docker >/dev/null; then
  deploy/install-compose.sh
fi
