#!/usr/bin/env bash
# The capture against tcpdump (issue 12), with the lab up (make up): the
# lab's UDP load runs while (a) capture records the bridge (make capture)
# and while (b) tcpdump records it on the host (tcpdump -i socklab0 -B 4096
# -w FILE), the two interleaved round after round (A B, then B A). Rows,
# appended as tab-separated lines (workload, round, impl, metric, value) to
# the file named by $1 (standard output without one), for
# services/kit/cmd/benchtable:
#
#   the lab's throughput while each records (impl ours, impl tcpdump)
#   the packets the kernel dropped for the capture (from its status file)
#
# tcpdump's own drops and every loadgen result go to standard error.
# deploy/bench.sh calls it when the lab runs; `make bench-capture` runs it
# alone (then it prints the table). Needs root (tcpdump on the bridge) and
# the docker lock held by the caller (see the Makefile).
#
# Environment: CAPTURE_ROUNDS (rounds, default COUNT or 3), LOAD_SECONDS
# (length of each load, 10), MAKE (make).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ROUNDS=${CAPTURE_ROUNDS:-${COUNT:-3}}
LOAD_SECONDS=${LOAD_SECONDS:-10}
MAKE=${MAKE:-make}
case $ROUNDS in '' | *[!0-9]* | 0) echo "bench-capture: CAPTURE_ROUNDS must be a positive integer" >&2; exit 2 ;; esac
case $LOAD_SECONDS in '' | *[!0-9]* | 0) echo "bench-capture: LOAD_SECONDS must be a positive integer" >&2; exit 2 ;; esac

out=${1:-/dev/stdout}
load="lab throughput while recording socklab0/autoreply-udp conns=8 c=64"
drops="capture kernel drops under lab load/autoreply-udp conns=8 c=64"

say() { printf 'bench-capture: %s\n' "$*" >&2; }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$out"; }
skip() { printf '%s\t-\tskipped\t-\t%s\n' "$1" "$2" >>"$out"; say "skipped $1: $2"; }

tmp=$(mktemp -d)
tcpdump_pid=""
compose() { SOCKLAB_BINARIES=prebuilt timeout 120 docker compose "$@"; }
cleanup() {
  if [ -n "$tcpdump_pid" ]; then
    kill -INT "$tcpdump_pid" 2>/dev/null || true
    wait "$tcpdump_pid" 2>/dev/null || true
  fi
  compose --profile capture rm -sf capture >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v docker >/dev/null ||
  ! timeout 30 docker compose ps --status running --services 2>/dev/null | grep -x autoreply >/dev/null; then
  skip "$load" "lab not running (make up)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  skip "$load" "tcpdump on socklab0 needs root"
  exit 0
fi
if ! command -v tcpdump >/dev/null; then
  say "apt-get install tcpdump"
  env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -qq || say "apt-get update failed"
  env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends tcpdump >/dev/null ||
    say "apt-get install failed"
fi
command -v tcpdump >/dev/null || { skip "$load" "tcpdump is not installed"; exit 0; }
command -v jq >/dev/null || { skip "$load" "jq is not installed"; exit 0; }

# run_load ROUND IMPL: the issue's load, from inside the lab; its result
# in $tmp/IMPL.json, the throughput as a row.
run_load() {
  local r=$1 impl=$2 f=$tmp/$2.json
  if ! timeout $((LOAD_SECONDS + 60)) docker run --rm --network socklab_lab --entrypoint /app socklab/loadgen:dev \
    -json -progress 0 -scenario autoreply-udp -target autoreply:9000 -connections 8 -concurrency 64 \
    -duration "${LOAD_SECONDS}s" >"$f" 2>"$f.err"; then
    skip "$load impl=$impl" "round $r: loadgen: $(tail -1 "$f.err")"
    return 1
  fi
  say "round $r $impl: $(jq -r '.throughput | floor' "$f") req/s, $(jq -r .requests "$f") requests, errors $(jq -c '.errors // {}' "$f")"
  row "$load" "$r" "$impl" ops/s "$(jq -r .throughput "$f")"
}

# with_capture ROUND: make capture, the load, then stop the capture and
# read its final status file.
with_capture() {
  local r=$1 status=$root/captures/capture-status.json before after d p
  mkdir -p captures && chmod 1777 captures
  before=$(ls captures)
  rm -f "$status"
  if ! timeout 180 "$MAKE" --no-print-directory capture >"$tmp/make-capture.log" 2>&1; then
    skip "$drops" "round $r: make capture: $(tail -1 "$tmp/make-capture.log")"
    compose --profile capture rm -sf capture >/dev/null 2>&1 || true
    return 1
  fi
  run_load "$r" ours || true
  # On stop the capture flushes and writes its status a last time.
  compose --profile capture stop capture >/dev/null 2>&1 || true
  if [ -s "$status" ]; then
    d=$(jq -r .drops "$status")
    p=$(jq -r .packets "$status")
    say "round $r capture: $p packets recorded, $d dropped by the kernel (ring ${CAPTURE_RING_BYTES:-default})"
    row "$drops" "$r" ours drops "$d"
  else
    skip "$drops" "round $r: no status file from the capture"
  fi
  compose --profile capture rm -sf capture >/dev/null 2>&1 || true
  # The pcap files of this round only: a run writes hundreds of MB.
  after=$(ls captures)
  comm -13 <(echo "$before" | sort) <(echo "$after" | sort) | grep -E '\.pcap$' | sed 's|^|captures/|' | xargs -r rm -f
}

# with_tcpdump ROUND: tcpdump on the host's end of the bridge, the load,
# then tcpdump's count of the packets the kernel dropped for it.
with_tcpdump() {
  local r=$1 i
  timeout $((LOAD_SECONDS + 120)) tcpdump -i socklab0 -B 4096 -w "$tmp/tcpdump.pcap" 2>"$tmp/tcpdump.err" &
  tcpdump_pid=$!
  for ((i = 0; i < 300; i++)); do
    grep -q 'listening on' "$tmp/tcpdump.err" && break
    kill -0 "$tcpdump_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q 'listening on' "$tmp/tcpdump.err"; then
    kill -INT "$tcpdump_pid" 2>/dev/null || true
    wait "$tcpdump_pid" 2>/dev/null || true
    tcpdump_pid=""
    skip "$load impl=tcpdump" "round $r: tcpdump did not say it was listening within 30 s: $(tr '\n' ' ' <"$tmp/tcpdump.err")"
    return 1
  fi
  run_load "$r" tcpdump || true
  kill -INT "$tcpdump_pid" 2>/dev/null || true
  wait "$tcpdump_pid" 2>/dev/null || true
  tcpdump_pid=""
  say "round $r tcpdump: $(grep -E 'captured|dropped by kernel' "$tmp/tcpdump.err" | tr '\n' ' ')"
  rm -f "$tmp/tcpdump.pcap"
}

for ((r = 1; r <= ROUNDS; r++)); do
  say "round $r/$ROUNDS: the lab under load while capture, then tcpdump, records (the other order in even rounds)"
  if ((r % 2 == 1)); then
    with_capture "$r" || true
    with_tcpdump "$r" || true
  else
    with_tcpdump "$r" || true
    with_capture "$r" || true
  fi
done
