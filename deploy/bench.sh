#!/usr/bin/env bash
# `make bench`: every Go benchmark the services define, plus references
# outside Go, as one markdown table (stdout and results/bench.md) made by
# services/kit/cmd/benchtable. Each comparison runs its two sides one after
# the other, round after round (A B A B), COUNT rounds; the table shows the
# median of the per-round ratios.
#
#   Go benchmarks   ours against minimal raw Go servers (and iperf3, in the
#                   filestream module, which runs it itself), loadgen
#                   against a minimal Go client. `go test -count N` runs the
#                   N results of one benchmark back to back (A A B B), so
#                   each round is a separate `go test -count 1` over every
#                   module instead.
#   udp ping-pong   loadgen -> autoreply-server over UDP against sockperf
#                   pp -> sockperf sr: round-trip p50 and p99.
#   closed loop     loadgen at 16 in flight against autoreply-server and
#                   against a minimal raw server (services/kit/cmd/rawserver):
#                   capacity.
#   open loop       p99 of both at 70% of autoreply-server's capacity (one
#                   rate, measured before the rounds).
#   lab             loadgen in a container against the lab's autoreply, and
#                   on the host against a host autoreply-server (only when
#                   the lab runs: make up).
#   capture         the lab's UDP load while capture, then tcpdump, records
#                   the bridge: throughput and the capture's drops
#                   (deploy/bench-capture.sh; lab up, as root).
# TCP bulk against iperf3 is the filestream module's BenchmarkTCPFile.
#
# Servers are pinned to CPU 0 and generators to CPU 1 when taskset and two
# CPUs are there. Loopback only; every wait is bounded; every process it
# starts is stopped on exit. Installs iperf3, sockperf and jq with apt-get
# when missing.
#
# Environment: COUNT (rounds, 5), BENCHTIME (go test -benchtime, 1s),
# BENCH (go test -bench pattern, .), EXT_SECONDS (length of each external
# run, 3), GO (go).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-.}
EXT_SECONDS=${EXT_SECONDS:-3}
GO=${GO:-go}
export GOTOOLCHAIN=local
case $COUNT in '' | *[!0-9]* | 0) echo "bench: COUNT must be a positive integer" >&2; exit 2 ;; esac
case $EXT_SECONDS in '' | *[!0-9]* | 0) echo "bench: EXT_SECONDS must be a positive integer" >&2; exit 2 ;; esac

tmp=$(mktemp -d)
gotxt=$tmp/go.txt
ext=$tmp/ext.tsv
: >"$gotxt"
: >"$ext"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf 'bench: %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------
need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v sockperf >/dev/null || need+=(sockperf)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "apt-get install ${need[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -qq || say "apt-get update failed"
  $sudo env DEBIAN_FRONTEND=noninteractive timeout 600 \
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || say "apt-get install failed"
fi
command -v jq >/dev/null || { say "jq is needed to read loadgen's results"; exit 1; }

pin0=() pin1=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin0=(taskset -c 0) pin1=(taskset -c 1)
fi

say "make build"
timeout 900 "${MAKE:-make}" --no-print-directory build >&2
bin=$root/bin

# --- Go benchmarks -----------------------------------------------------------
mapfile -t modules < <($GO list -m -f '{{.Dir}}')
[ ${#modules[@]} -gt 0 ] || { say "go list -m found no modules"; exit 1; }
gofail=0
for ((r = 1; r <= COUNT; r++)); do
  for m in "${modules[@]}"; do
    say "round $r/$COUNT: go test -bench '$BENCH' in ${m#"$root"/}"
    # All of the output goes to the file; the result lines to the terminal.
    set +e
    (cd "$m" && timeout 3600 $GO test -run '^$' -bench "$BENCH" -benchmem -count 1 \
      -benchtime "$BENCHTIME" -timeout 50m ./... 2>&1) |
      tee -a "$gotxt" | grep --line-buffered -E '^(Benchmark|--- FAIL|--- SKIP|FAIL|panic)' >&2
    st=("${PIPESTATUS[@]}")
    set -e
    [ "${st[0]}" -eq 0 ] || gofail=$((gofail + 1))
  done
done

# --- external references -----------------------------------------------------
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ext"; }
skip() { printf '%s\t-\tskipped\t-\t%s\n' "$1" "$2" >>"$ext"; say "skipped $1: $2"; }

# start LOG CMD...: CMD in the background for at most an hour, its output
# in LOG; sets $started to its pid.
start() {
  local log=$1
  shift
  timeout 3600 "$@" >"$log" 2>&1 &
  started=$!
  pids+=("$started")
}

# listen_addr LOG: the addr of the first "listening" JSON line of LOG,
# waiting up to 10 s for it.
listen_addr() {
  local i a
  for ((i = 0; i < 100; i++)); do
    a=$(grep -m1 '"listening"' "$1" 2>/dev/null | jq -r '.addr // empty' 2>/dev/null || true)
    if [ -n "$a" ]; then
      echo "$a"
      return 0
    fi
    sleep 0.1
  done
  say "no listening line in $1:"
  tail -5 "$1" >&2
  return 1
}

# free_port tcp|udp: a loopback port the kernel just handed out.
free_port() {
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}

# loadgen WORKLOAD ROUND IMPL OUT ARGS...: a pinned loadgen run, its JSON
# result in OUT. A run that fails, or where any request failed, is left
# out of the table with a note.
loadgen() {
  local w=$1 r=$2 impl=$3 out=$4 errors
  shift 4
  if ! "${pin1[@]}" timeout $((EXT_SECONDS + 30)) "$bin/loadgen" -json -progress 0 -duration "${EXT_SECONDS}s" "$@" \
    >"$out" 2>"$out.err"; then
    skip "$w impl=$impl" "round $r: loadgen: $(tail -1 "$out.err")"
    return 1
  fi
  errors=$(jq -c '.errors // {}' "$out")
  if [ "$errors" != "{}" ]; then
    skip "$w impl=$impl" "round $r: loadgen errors $errors of $(jq -r .requests "$out") requests"
    return 1
  fi
}

# Servers, pinned to CPU 0, for every round.
ar_log=$tmp/autoreply.log
raw_log=$tmp/rawserver.log
LOG_FORMAT=json start "$ar_log" "${pin0[@]}" "$bin/autoreply-server" -protocol both -addr 127.0.0.1:0
ar=$(listen_addr "$ar_log")
start "$raw_log" "${pin0[@]}" "$bin/rawserver" -addr 127.0.0.1:0
raw=$(listen_addr "$raw_log")
sp_port=""
if command -v sockperf >/dev/null; then
  sp_port=$(free_port udp)
  start "$tmp/sockperf-sr.log" "${pin0[@]}" sockperf sr -i 127.0.0.1 -p "$sp_port"
fi

udp="udp ping-pong/size=64"
closed="autoreply-tcp closed loop/conns=16"
open="open-loop p99 at 70% capacity/autoreply-tcp"
lab="lab in containers vs host loopback/autoreply-tcp conns=8"

lab_up=""
if command -v docker >/dev/null &&
  timeout 30 docker compose ps --status running --services 2>/dev/null | grep -x autoreply >/dev/null; then
  lab_up=yes
else
  skip "$lab" "lab not running (make up)"
fi

# The open loop's rate: 70% of autoreply-server's closed-loop capacity.
rate=""
if loadgen "$open" 0 ours "$tmp/cap.json" -scenario autoreply-tcp -target "$ar" -concurrency 16; then
  rate=$(jq -r '.throughput * 0.7 | floor' "$tmp/cap.json")
  if [ "$rate" -ge 1 ]; then
    open="$open rate=$rate/s"
    say "capacity $(jq -r '.throughput | floor' "$tmp/cap.json") req/s: open loop at $rate req/s"
  else
    skip "$open" "no capacity measured"
    rate=""
  fi
fi

# sockperf_pp ROUND: a sockperf ping-pong run, its round-trip p50/p99 as rows.
sockperf_pp() {
  local out=$tmp/sockperf-pp.txt p50 p99
  if ! "${pin1[@]}" timeout $((EXT_SECONDS + 30)) sockperf pp -i 127.0.0.1 -p "$sp_port" -t "$EXT_SECONDS" -m 64 --full-rtt \
    >"$out" 2>&1; then
    skip "$udp impl=sockperf" "round $1: sockperf pp: $(tail -1 "$out")"
    return 1
  fi
  # "sockperf: ---> percentile 50.000 =   65.446" (µs, after colour codes)
  p50=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/percentile 50\.000 =/ {print $NF}')
  p99=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/percentile 99\.000 =/ {print $NF}')
  if [ -z "$p50" ] || [ -z "$p99" ]; then
    skip "$udp impl=sockperf" "round $1: no percentiles in sockperf's output"
    return 1
  fi
  row "$udp" "$1" sockperf p50-us "$p50"
  row "$udp" "$1" sockperf p99-us "$p99"
}

# result WORKLOAD ROUND IMPL FILE METRICS...: rows of a loadgen result
# (ops/s, p50-us, p99-us).
result() {
  local w=$1 r=$2 impl=$3 f=$4 m
  shift 4
  for m in "$@"; do
    case $m in
    ops/s) row "$w" "$r" "$impl" ops/s "$(jq -r .throughput "$f")" ;;
    p50-us) row "$w" "$r" "$impl" p50-us "$(jq -r .latency_us.p50 "$f")" ;;
    p99-us) row "$w" "$r" "$impl" p99-us "$(jq -r .latency_us.p99 "$f")" ;;
    esac
  done
}

# in_lab ROUND OUT ARGS...: loadgen from its image on the lab network,
# hardened like the lab's containers (docker run: compose run would build
# the image first).
in_lab() {
  local r=$1 out=$2 errors
  shift 2
  if ! timeout $((EXT_SECONDS + 60)) docker run --rm --network socklab_lab --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true socklab/loadgen:dev -json -progress 0 -duration "${EXT_SECONDS}s" "$@" \
    >"$out" 2>"$out.err"; then
    skip "$lab impl=ours" "round $r: loadgen in the lab: $(tail -1 "$out.err")"
    return 1
  fi
  errors=$(jq -c '.errors // {}' "$out")
  if [ "$errors" != "{}" ]; then
    skip "$lab impl=ours" "round $r: loadgen errors $errors"
    return 1
  fi
}

for ((r = 1; r <= COUNT; r++)); do
  say "round $r/$COUNT: external references"
  if [ -n "$sp_port" ]; then
    loadgen "$udp" "$r" ours "$tmp/udp.json" -scenario autoreply-udp -target "$ar" -concurrency 1 -size 64 &&
      result "$udp" "$r" ours "$tmp/udp.json" p50-us p99-us
    sockperf_pp "$r" || true
  elif [ "$r" -eq 1 ]; then
    skip "$udp" "sockperf not installed"
  fi

  loadgen "$closed" "$r" ours "$tmp/c-ours.json" -scenario autoreply-tcp -target "$ar" -concurrency 16 &&
    result "$closed" "$r" ours "$tmp/c-ours.json" ops/s
  loadgen "$closed" "$r" raw "$tmp/c-raw.json" -scenario autoreply-tcp -target "$raw" -concurrency 16 &&
    result "$closed" "$r" raw "$tmp/c-raw.json" ops/s

  if [ -n "$rate" ]; then
    loadgen "$open" "$r" ours "$tmp/o-ours.json" -scenario autoreply-tcp -target "$ar" -rate "$rate" -connections 64 &&
      result "$open" "$r" ours "$tmp/o-ours.json" p99-us
    loadgen "$open" "$r" raw "$tmp/o-raw.json" -scenario autoreply-tcp -target "$raw" -rate "$rate" -connections 64 &&
      result "$open" "$r" raw "$tmp/o-raw.json" p99-us
  fi

  if [ -n "$lab_up" ]; then
    in_lab "$r" "$tmp/lab.json" -scenario autoreply-tcp -target autoreply:9000 -concurrency 8 &&
      result "$lab" "$r" ours "$tmp/lab.json" ops/s p50-us p99-us
    loadgen "$lab" "$r" loopback "$tmp/host.json" -scenario autoreply-tcp -target "$ar" -concurrency 8 &&
      result "$lab" "$r" loopback "$tmp/host.json" ops/s p50-us p99-us
  fi
done

# --- capture against tcpdump under the lab's load (issue 12) ----------------
say "capture against tcpdump under the lab's UDP load (deploy/bench-capture.sh)"
COUNT=$COUNT deploy/bench-capture.sh "$ext" || say "deploy/bench-capture.sh failed"

# --- the table ---------------------------------------------------------------
mkdir -p results
cp "$gotxt" results/bench-go.txt
cp "$ext" results/bench-ext.tsv
{
  echo "# make bench"
  echo
  echo "$(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), COUNT=$COUNT BENCHTIME=$BENCHTIME" \
    "EXT_SECONDS=$EXT_SECONDS, $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo))," \
    "$([ ${#pin0[@]} -gt 0 ] && echo 'servers on CPU 0, generators on CPU 1' || echo 'not pinned')."
  echo
  timeout 300 $GO run ./services/kit/cmd/benchtable -tsv "$ext" "$gotxt"
} | tee results/bench.md
say "table in results/bench.md; raw output in results/bench-go.txt and results/bench-ext.tsv"
if [ "$gofail" -gt 0 ]; then
  say "$gofail go test runs failed (see the notes under the table and results/bench-go.txt)"
  exit 1
fi
