#!/usr/bin/env bash
# The lab end to end on this machine's Docker Engine: build the images
# offline, start the lab, talk to every service from the host (published
# ports) and from a container on the lab network, scale the load
# generators and check their merged report, capture a TinyTCP exchange on
# socklab0 and find it in the pcap with tshark, and SIGKILL a movie server
# under load to check that no acknowledged write is lost and that the
# client names the server that is down. Bounded in time; always tears down.
#
# Traffic goes only to 127.0.0.1 and to the lab's own containers.
set -euo pipefail
cd "$(dirname "$0")/.."

# Its own project, so its volumes are its own: it starts from empty ones and
# removes them at the end, and never touches the data of a person's lab.
# The bridge name and host ports are the lab's, so the lab must be down.
export COMPOSE_PROJECT_NAME=socklab-e2e SOCKLAB_BINARIES=prebuilt
net=${COMPOSE_PROJECT_NAME}_lab
# One round per load generator, short, and no restart: the test reads the
# results of exactly that round.
export LOADGEN_DURATION=${E2E_LOAD_DURATION:-15s} LOADGEN_RATE=30 LOADGEN_RESTART=no
export CAPTURE_FILTER="tcp port 40000"
compose() { docker compose --profile capture "$@"; }
bin=bin/image
start=$(date +%s)
failures=0
passes=0

step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }
pass() { passes=$((passes + 1)); printf 'ok   %s\n' "$*"; }
fail() { failures=$((failures + 1)); printf 'FAIL %s\n' "$*"; }
# expect NAME PATTERN TEXT: TEXT must match the extended regex PATTERN.
expect() {
  if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else fail "$1: no match for /$2/ in:"; sed 's/^/     | /' <<<"$3" | head -40; fi
}
# run_ok NAME CMD...: CMD must exit 0 (within 120 s); prints and returns its output.
run_ok() {
  local name=$1 out rc=0; shift
  out=$(bounded 120 "$@" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then pass "$name" >&2; else fail "$name: exit $rc" >&2; sed 's/^/     | /' <<<"$out" | head -40 >&2; fi
  printf '%s\n' "$out"
}
# bounded SECONDS CMD...: timeout(1) that also runs this script's functions.
bounded() {
  local secs=$1; shift
  if declare -F "$1" >/dev/null; then "$@"; else timeout "$secs" "$@"; fi
}
# in_lab IMAGE CLIENT ARGS...: run a client from socklab/IMAGE on the lab
# network, hardened like the lab's containers (docker run, not compose run,
# which would rebuild the image first).
in_lab() {
  local image=$1 client=$2; shift 2
  timeout 120 docker run --rm --network "$net" --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true --entrypoint "/$client" "socklab/$image:dev" "$@"
}
# image_ids: the IDs of a few lab images, to check that a plain compose
# command reused the images `make images` built (no rebuild, no registry).
image_ids() { docker image inspect --format '{{.Id}}' socklab/loadgen:dev socklab/capture:dev socklab/autoreply:dev; }
# merge_results: the load generators' merged report.
merge_results() {
  timeout 60 docker run --rm -v "${COMPOSE_PROJECT_NAME}_results:/results:ro" --entrypoint /app socklab/loadgen:dev merge /results
}

teardown() {
  local rc=$?
  step "teardown"
  if [ "$failures" -gt 0 ] || [ "$rc" -ne 0 ]; then
    compose ps -a || true
    compose logs --tail=30 || true
  fi
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$capdir"
  printf '\ne2e: %d passed, %d failed in %ss\n' "$passes" "$failures" "$(( $(date +%s) - start ))"
  if [ "$rc" -eq 0 ] && [ "$failures" -gt 0 ]; then exit 1; fi
}

command -v docker >/dev/null || { echo "e2e: docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "e2e: the Docker Engine is not running (docker info failed)" >&2; exit 1; }
docker compose version >/dev/null 2>&1 || { echo "e2e: Docker Compose v2 is missing: run make deps" >&2; exit 1; }
command -v tshark >/dev/null || { echo "e2e: tshark is missing: run make deps" >&2; exit 1; }
if docker compose -p socklab ps -q 2>/dev/null | grep -q .; then
  echo "e2e: the socklab lab is running (it holds socklab0 and the ports); stop it first: make down" >&2
  exit 1
fi
# Leftovers of an interrupted run.
compose down -v --remove-orphans >/dev/null 2>&1 || true
capdir=$(mktemp -d)
trap teardown EXIT

step "build the images offline"
timeout 900 make -s images >/dev/null
images=$(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' 'socklab/*')
printf '%s\n' "$images"

step "start the lab"
t0=$(date +%s)
timeout 300 docker compose up -d --wait --quiet-build
pass "docker compose up --wait: every server healthy after $(( $(date +%s) - t0 ))s"

step "native clients against the published ports"
out=$(run_ok "tinytcp demo" "$bin/tinytcp/tinytcp-client" 127.0.0.1 40000)
expect "tinytcp demo: TIME answered" '^<- TIME [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-Z]' "$out"
expect "tinytcp demo: ECHO answered" '^<- ECHO Hello from client$' "$out"
out=$(run_ok "autoreply tcp" "$bin/autoreply/autoreply-client" -server 127.0.0.1:9000 -count 20 -interval 0 -q)
expect "autoreply tcp: 20 replies" '^sent=20 replied=20 lost=0 errors=0$' "$out"
out=$(run_ok "autoreply udp" "$bin/autoreply/autoreply-client" -protocol udp -server 127.0.0.1:9000 -count 20 -interval 0 -q)
expect "autoreply udp: 20 replies" '^sent=20 replied=20 lost=0 errors=0$' "$out"
out=$(run_ok "filestream tcp echo, file, stream" "$bin/filestream/filestream-client" -protocol tcp -server 127.0.0.1:9001 -c "hello lab" -c 1000000 -c "stream 5 20" -c quit)
printf '%s\n' "$out" | tail -12
out=$(run_ok "filestream udp echo, file, stream" "$bin/filestream/filestream-client" -protocol udp -server 127.0.0.1:9001 -c "hello lab" -c 100000 -c "stream 5 20" -c quit)
printf '%s\n' "$out" | tail -12
id="e2e-$$-$RANDOM"
out=$(run_ok "connid OK" "$bin/connid/connid-client" -timeout 5s HELLO 127.0.0.1 9002 "$id")
expect "connid: OK for a new ID" "^Connection established $id " "$out"
out=$(timeout 60 "$bin/connid/connid-client" -timeout 5s -tries 1 HELLO 127.0.0.1 9002 "$id" 2>&1 || true)
expect "connid: RESET for the same ID" "^Connection Error $id on " "$out"
expect "connid: failure after the tries" '^Connection Failure on ' "$out"
fleet=127.0.0.1:5000,127.0.0.1:5001,127.0.0.1:5002
out=$(timeout 60 "$bin/moviedb/moviedb-client" -addrs "$fleet" get "Alien" 2>&1 || true)
expect "moviedb: every server answers" '127\.0\.0\.1:5002 +Alien' "$out"
expect "moviedb: the fleet disagrees on Alien" 'servers disagree on "Alien"' "$out"

step "the same from a container on the lab network"
out=$(run_ok "tinytcp demo in the lab" in_lab tinytcp tinytcp-client tinytcp 40000)
expect "tinytcp in the lab: BYE" '^<- BYE$' "$out"
out=$(run_ok "autoreply udp in the lab" in_lab autoreply autoreply-client -protocol udp -server autoreply:9000 -count 10 -interval 0 -q)
expect "autoreply udp in the lab: 10 replies" '^sent=10 replied=10' "$out"
out=$(run_ok "filestream in the lab" in_lab filestream filestream-client -protocol tcp -server filestream:9001 -c hi -c 5000 -c quit)
out=$(run_ok "connid in the lab" in_lab connid connid-client -timeout 5s HELLO connid 9002 "$id-lab")
expect "connid in the lab: OK" "^Connection established $id-lab " "$out"
out=$(in_lab moviedb moviedb-client -addrs moviedb-1:5000,moviedb-2:5000,moviedb-3:5000 get "Alien" 2>&1 || true)
expect "moviedb in the lab: disagreement by server name" 'moviedb-2:5000' "$out"

step "capture a TinyTCP exchange on socklab0"
mkdir -p captures && chmod 1777 captures
before=$(image_ids)
timeout 120 env -u SOCKLAB_BINARIES docker compose --profile capture up -d --wait capture
[ "$(image_ids)" = "$before" ] && pass "docker compose --profile capture up reused the built images" || fail "capture up rebuilt an image"
in_lab tinytcp tinytcp-client -c TIME -c QUIT tinytcp 40000 >/dev/null || fail "capture: tinytcp exchange"
timeout 60 docker compose --profile capture stop capture >/dev/null
pcap=$(ls -t captures/*.pcap 2>/dev/null | head -1 || true)
if [ -z "$pcap" ]; then
  fail "capture: no pcap file in captures/"
else
  text=$(tshark -r "$pcap" -d tcp.port==40000,telnet -T fields -e telnet.data 2>/dev/null | tr -d '\r' || true)
  expect "capture: the TIME request is in $pcap" '^TIME(\\n|$)' "$text"
  expect "capture: and its answer" '^TIME [0-9]{4}-' "$text"
fi

step "scale the load generators to 3"
before=$(image_ids)
timeout 120 env -u SOCKLAB_BINARIES docker compose up -d --scale loadgen=3
[ "$(image_ids)" = "$before" ] && pass "docker compose up --scale reused the built images" || fail "docker compose up --scale rebuilt an image"
ids=$(docker compose ps -q -a loadgen)
[ "$(wc -w <<<"$ids")" -eq 3 ] && pass "3 load generators" || fail "load generators: $(wc -w <<<"$ids"), want 3"
if timeout 180 docker wait $ids >/dev/null; then pass "load generators finished their round"; else fail "load generators still running"; fi
report=$(merge_results 2>&1 || true)
printf '%s\n' "$report"
expect "merged report covers 3 generators" '\(3 generators: ' "$report"
expect "merged report: traffic flowed" '^ *successes +[1-9][0-9]*' "$report"
expect "merged report: no errors" '^ *errors +0$' "$report"

step "kill a movie server under load"
# A second round of load runs while the fleet takes writes and loses a
# server; its errors are expected and not checked.
LOADGEN_MIX=moviedb-get=1,moviedb-mix=1 LOADGEN_DURATION=40s timeout 120 docker compose up -d --quiet-build --scale loadgen=1 --force-recreate loadgen
acked=()
for i in 1 2 3 4 5; do
  title="E2E Film $$ $i"
  if timeout 30 "$bin/moviedb/moviedb-client" -addrs "$fleet" add "$title" year=2026 director="The Lab" genres=Drama runtime=9$i rating=NR >/dev/null 2>&1; then
    acked+=("$title")
  fi
done
[ "${#acked[@]}" -eq 5 ] && pass "5 writes acknowledged by all 3 servers" || fail "only ${#acked[@]} of 5 writes acknowledged"
docker compose kill -s SIGKILL moviedb-2 >/dev/null
out=$(in_lab moviedb moviedb-client -addrs moviedb-1:5000,moviedb-2:5000,moviedb-3:5000 get "${acked[0]:-Alien}" 2>&1 || true)
expect "outage reported by name" 'moviedb-2:5000.*(DOWN|down)|failed: .*moviedb-2:5000' "$out"
timeout 120 docker compose up -d --wait --quiet-build moviedb-2 >/dev/null
for title in "${acked[@]}"; do
  out=$(timeout 30 "$bin/moviedb/moviedb-client" -addrs 127.0.0.1:5001 get "$title" 2>&1 || true)
  expect "after SIGKILL and restart, moviedb-2 still has \"$title\"" "127\.0\.0\.1:5001 +$title \(2026\)" "$out"
done

# Further checks, one file per area (impairment, dissectors, dashboard...),
# sourced in order so they share this script's helpers and its lab.
for part in deploy/e2e.d/*.sh; do
  [ -e "$part" ] || continue
  step "$(basename "$part" .sh)"
  # shellcheck source=/dev/null
  source "$part"
done
