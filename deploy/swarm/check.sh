#!/usr/bin/env bash
# make swarm-check: the stack on a three-node Docker Swarm simulated on this
# one host, end to end. This machine's own dockerd never enters swarm mode:
# each node is an extra dockerd (with its own containerd, started by
# dockerd) in a network namespace of its own, the three joined by a bridge
# in a fourth namespace, so every address exists only inside those
# namespaces. Each node has its own data root, exec root, socket, config
# file, cgroup parent and the vfs storage driver, and runs under
# `nsenter --net` plus `unshare -m -u` (its own hostname) with a fresh
# sysfs on /sys/class/net (`ip netns exec` would remount /sys and hide the
# cgroup mounts).
#
# Steps: images built on the host and copied to every node (docker save |
# docker load), a three-manager swarm, the stack deployed with
# make swarm-up, every server healthy, each client answering on a
# node's published ports and inside the overlay (seen as VXLAN between the
# nodes, and on the overlay's bridge in its namespace), six load generators
# spread over the nodes with 0 errors in one merged report, a movie server
# keeping its volume when its task is replaced, then one node killed whole
# (dockerd, its containerd and containers) and its servers running and
# healthy again on the others. Everything it creates is named slswarm* and
# removed on every exit path. Bounded: SWARM_CHECK_TIMEOUT seconds (default
# 240) from the images on, plus the image build.
#
# Needs root, dockerd, containerd, runc, docker-proxy, nsenter, unshare,
# iproute2, tshark and the vxlan and bridge kernel modules. Building and
# saving the images takes the lab's docker lock (SOCKLAB_LOCK, default
# /tmp/socklab-docker.lock; set it empty when the caller already holds the
# lock); the nodes themselves use none of the lab's bridge or host ports.
# SWARM_IMAGES_TAR=FILE uses that `docker save` archive instead of building.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

prefix=slswarm
nodes=(n1 n2 n3)
net=10.213.0        # the underlay, inside the namespaces only
client_ip=$net.254  # the bridge namespace's own address: where clients run
victim=             # the node killed: n2 or n3, whichever runs more servers
stack=socklab
budget=${SWARM_CHECK_TIMEOUT:-240}
lock=${SOCKLAB_LOCK-/tmp/socklab-docker.lock}
work=/tmp/$prefix
bin=$root/bin/image
images=(autoreply tinytcp filestream connid moviedb loadgen dashboard)

start=$SECONDS budget_start=$SECONDS
failures=0
passes=0
laps=()
step_name="" step_start=$SECONDS

lap() {
  [ -n "$step_name" ] && laps+=("$(printf '%4ss  %s' $((SECONDS - step_start)) "$step_name")")
  step_name=$* step_start=$SECONDS
  [ -n "$step_name" ] && printf '\n== %s (%ss)\n' "$step_name" $((SECONDS - start))
  return 0
}
pass() { passes=$((passes + 1)); printf 'ok   %s\n' "$*"; }
fail() { failures=$((failures + 1)); printf 'FAIL %s\n' "$*"; }
die() { fail "$*"; exit 1; }
expect() {
  if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else fail "$1: no match for /$2/ in:"; sed 's/^/     | /' <<<"$3" | head -30; fi
}
# left: seconds left of the budget, at least 1.
left() { local l=$((budget - (SECONDS - budget_start))); [ "$l" -gt 0 ] && echo "$l" || echo 1; }
# bounded SECS CMD...: CMD within SECS seconds and within the budget.
bounded() {
  local s=$1; shift
  [ "$s" -le "$(left)" ] || s=$(left)
  timeout "$s" "$@"
}

sock() { echo "unix:///run/$prefix-$1/docker.sock"; }
dk() { local n=$1; shift; bounded 120 docker -H "$(sock "$n")" "$@"; }
ip_of() { echo "$net.${1#n}"; }
# in_ns NS CMD...: CMD in the network namespace NS, mounts untouched.
in_ns() { local ns=$1; shift; bounded 60 nsenter --net="/run/netns/$prefix-$ns" "$@"; }
# until_ok SECS WHAT CMD...: retry CMD every second until it succeeds.
until_ok() {
  local secs=$1 what=$2 end; shift 2
  end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || { fail "$what: not after ${secs}s"; return 1; }
    [ "$(left)" -gt 1 ] || die "$what: out of time (budget ${budget}s)"
    sleep 1
  done
}

# kill_node N: SIGKILL every process of node N (dockerd, containerd, the
# shims, the containers: all in the cgroups under /$prefix-N) until none is
# left. Afterwards the node's mount namespace, and every mount its daemon
# made, is gone with them.
kill_node() {
  local cg=/sys/fs/cgroup/pids/$prefix-$1 pids
  [ -d "$cg" ] || return 0
  for _ in $(seq 50); do
    pids=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086 # one PID a word
    kill -9 $pids 2>/dev/null || true
    sleep 0.1
  done
  echo "swarm-check: processes of $1 survived SIGKILL: $pids" >&2
}

# Every containerd shim leaves its socket in /run/containerd/s, named by
# the SHA-256 of containerd's address, the namespace and the container ID;
# a shim killed with SIGKILL cannot remove it.
remove_shim_sockets() {
  local n=$1 dir id
  for dir in "$work/$n/data/containers"/*/; do
    [ -d "$dir" ] || continue
    id=$(basename "$dir")
    rm -f "/run/containerd/s/$(printf '%s' "/run/$prefix-$n/containerd/containerd.sock/moby/$id" | sha256sum | cut -d' ' -f1)"
  done
}

teardown() {
  local rc=$? n d
  trap - EXIT INT TERM
  set +e
  lap "teardown"
  if [ "$rc" -ne 0 ] || [ "$failures" -gt 0 ]; then
    for n in "${nodes[@]}"; do
      [ -S "/run/$prefix-$n/docker.sock" ] || continue
      echo "-- $n: tasks and daemon log tail"
      timeout 10 docker -H "$(sock "$n")" stack ps "$stack" --no-trunc 2>/dev/null | head -30 || true
      tail -n 15 "$work/$n/dockerd.log" 2>/dev/null || true
    done
  fi
  for n in "${nodes[@]}"; do
    # Stop the containers first, so their shims exit and remove their sockets.
    if [ -S "/run/$prefix-$n/docker.sock" ]; then
      ids=$(timeout 10 docker -H "$(sock "$n")" ps -aq 2>/dev/null || true)
      # shellcheck disable=SC2086 # one ID a word
      [ -z "$ids" ] || timeout 20 docker -H "$(sock "$n")" rm -f $ids >/dev/null 2>&1 || true
    fi
  done
  for n in "${nodes[@]}"; do kill_node "$n"; done
  for n in "${nodes[@]}"; do
    remove_shim_sockets "$n"
    for d in /sys/fs/cgroup/*/"$prefix-$n"; do
      [ ! -d "$d" ] || find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    ip netns del "$prefix-$n" 2>/dev/null || true
    rm -rf "/run/$prefix-$n"
  done
  ip netns del "$prefix-br" 2>/dev/null || true
  rm -rf "$work"
  lap ""
  printf '\nswarm-check timings:\n'
  printf '%s\n' "${laps[@]}"
  leftover=$(ip netns list | grep -c "^$prefix" || true)
  for d in /sys/fs/cgroup/*/"$prefix"-* /run/"$prefix"-* "$work"; do [ ! -e "$d" ] || leftover=$((leftover + 1)); done
  if [ "$leftover" -ne 0 ]; then
    echo "swarm-check: $leftover namespaces, cgroups or directories left behind" >&2
    failures=$((failures + 1))
  fi
  printf '\nswarm-check: %d passed, %d failed in %ss\n' "$passes" "$failures" $((SECONDS - start))
  if [ "$rc" -eq 0 ] && [ "$failures" -gt 0 ]; then rc=1; fi
  exit "$rc"
}

lap "preflight"
# What a machine may really lack skips the check, with the reason; what
# can be installed fails it.
skip() { printf 'swarm-check: SKIP: %s\n' "$*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, extra dockerd processes)"
for m in vxlan bridge; do
  [ -d "/sys/module/$m" ] || modprobe "$m" 2>/dev/null || skip "the kernel has no $m module (the overlay needs VXLAN and bridges)"
done
[ -d /sys/fs/cgroup/pids ] || skip "no cgroup v1 pids hierarchy at /sys/fs/cgroup/pids, where this check finds each node's processes"
for c in docker dockerd containerd runc docker-proxy nsenter unshare ip flock sha256sum; do
  command -v "$c" >/dev/null || die "$c is not installed"
done
command -v tshark >/dev/null || die "tshark is not installed: run make deps"
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
  echo "note: this machine's dockerd is in swarm mode; the check leaves it alone"
fi
printf 'dockerd %s, containerd %s, runc %s\n' "$(dockerd --version | awk '{print $3}' | tr -d ,)" \
  "$(containerd --version | awk '{print $3}')" "$(runc --version | awk 'NR==1 {print $3}')"
# Leftovers of an interrupted run: ours by name only.
trap teardown EXIT
trap 'exit 130' INT TERM
if ip netns list | grep -q "^$prefix" || [ -d "$work" ]; then
  echo "removing what an earlier run left behind"
  failures_before=$failures
  (teardown) >/dev/null 2>&1 || true
  failures=$failures_before
fi
mkdir -p "$work"

lap "build the images and save them (host daemon, under the lab's lock)"
save_images() {
  make -s images >"$work/images.log" 2>&1 || { cat "$work/images.log"; return 1; }
  docker save -o "$work/images.tar" "${images[@]/#/socklab/}"
}
export -f save_images
export work
images=("${images[@]/%/:dev}")
# Waiting for the lock (up to 10 minutes) is not part of the budget.
# SWARM_IMAGES_TAR: use that `docker save` archive instead (built elsewhere).
if [ -n "${SWARM_IMAGES_TAR:-}" ]; then
  cp "$SWARM_IMAGES_TAR" "$work/images.tar"
elif [ -n "$lock" ]; then
  timeout 900 flock -w 600 "$lock" bash -c "$(declare -p images); save_images" || die "make images / docker save failed"
else
  timeout 300 bash -c "$(declare -p images); save_images" || die "make images / docker save failed"
fi
pass "images saved: $(du -h "$work/images.tar" | cut -f1)"
budget_start=$SECONDS

lap "namespaces: a bridge and three nodes"
ip netns add "$prefix-br"
in_ns br ip link add "${prefix}0" type bridge
in_ns br ip addr add "$client_ip/24" dev "${prefix}0"
in_ns br ip link set "${prefix}0" up
in_ns br ip link set lo up
for n in "${nodes[@]}"; do
  ip netns add "$prefix-$n"
  ip link add "$prefix-$n" netns "$prefix-br" type veth peer name eth0 netns "$prefix-$n"
  in_ns br ip link set "$prefix-$n" master "${prefix}0" up
  in_ns "$n" ip addr add "$(ip_of "$n")/24" dev eth0
  in_ns "$n" ip link set eth0 up
  in_ns "$n" ip link set lo up
done
pass "3 nodes on ${prefix}0 ($net.0/24, inside the namespaces)"

lap "start three dockerd, each with its own containerd"
# Node N runs in its own pids cgroup, so that every process it starts
# (containerd, shims) can be found and killed; containers go under the
# same parent (--cgroup-parent). Each node starts its own containerd and
# hands it to dockerd: left to itself, dockerd would use a system
# containerd at /run/containerd/containerd.sock when there is one (Docker
# CE hosts have it), and the nodes and the host would share its "moby"
# namespace. The nodes have no route out of their namespaces, and
# DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 stops the swarm agent from trying
# a registry before each task (it would wait for the lookup to fail every
# time).
start_node() {
  local n=$1 d=$work/$1 r=/run/$prefix-$1
  mkdir -p "$d/data" "$r" "/sys/fs/cgroup/pids/$prefix-$n"
  echo '{}' >"$d/daemon.json"
  cat >"$d/containerd.toml" <<EOT
version = 2
root = "$d/containerd"
state = "$r/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$r/containerd/containerd.sock"
EOT
  (
    echo "$BASHPID" >"/sys/fs/cgroup/pids/$prefix-$n/cgroup.procs"
    exec nsenter --net="/run/netns/$prefix-$n" unshare -m -u --propagation private sh -c '
      set -e
      hostname "$2"
      mkdir -p "$1/sys"
      mount -t sysfs "$2" "$1/sys"
      mount --bind "$1/sys/class/net" /sys/class/net
      umount "$1/sys"
      containerd --config "$1/containerd.toml" --log-level warn &
      i=0
      until [ -S "/run/$2/containerd/containerd.sock" ]; do
        i=$((i + 1)); [ "$i" -lt 300 ] || { echo "containerd did not start" >&2; exit 1; }
        sleep 0.1
      done
      DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec dockerd --config-file "$1/daemon.json" \
        --containerd "/run/$2/containerd/containerd.sock" --data-root "$1/data" --exec-root "/run/$2" \
        --pidfile "/run/$2/docker.pid" -H "unix:///run/$2/docker.sock" --storage-driver vfs \
        --cgroup-parent "/$2" --log-level warn' sh "$d" "$prefix-$n"
  ) >"$d/dockerd.log" 2>&1 &
  disown # its SIGKILL is no news to report
}
for n in "${nodes[@]}"; do start_node "$n"; done
for n in "${nodes[@]}"; do
  until_ok 30 "dockerd $n answers" docker -H "$(sock "$n")" info || exit 1
done
pass "3 dockerd answering ($(docker -H "$(sock n1)" info --format '{{.ServerVersion}}, {{.Driver}}, containerd {{.ContainerdCommit.ID}}'))"

lap "load the images on every node"
pids=()
for n in "${nodes[@]}"; do dk "$n" load -q -i "$work/images.tar" >"$work/$n/load.log" 2>&1 & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "docker load: $(cat "$work"/*/load.log)"; done
for n in "${nodes[@]}"; do
  got=$(dk "$n" image ls --format '{{.Repository}}:{{.Tag}}' 'socklab/*' | sort | tr '\n' ' ')
  [ "$(wc -w <<<"$got")" -eq "${#images[@]}" ] && pass "$n has the ${#images[@]} images" || fail "$n has images: $got"
done

lap "a swarm of three managers"
# A short dispatcher heartbeat so that a dead node is noticed in seconds.
dk n1 swarm init --advertise-addr "$(ip_of n1)" --listen-addr "$(ip_of n1):2377" --dispatcher-heartbeat 2s >/dev/null
token=$(dk n1 swarm join-token -q manager)
for n in n2 n3; do
  dk "$n" swarm join --token "$token" --advertise-addr "$(ip_of "$n")" --listen-addr "$(ip_of "$n"):2377" "$(ip_of n1):2377" >/dev/null
done
ids=()
for n in "${nodes[@]}"; do ids+=("$(dk "$n" info --format '{{.Swarm.NodeID}}')"); done
# The movie servers' volumes live on n1, the node never killed.
dk n1 node update --label-add socklab.moviedb-1=true --label-add socklab.moviedb-2=true \
  --label-add socklab.moviedb-3=true "${ids[0]}" >/dev/null
out=$(dk n1 node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}')
printf '%s\n' "$out"
[ "$(grep -c ' Ready ' <<<"$out")" -eq 3 ] && pass "3 nodes ready" || fail "nodes: $out"
[ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ] && pass "the host's dockerd is not in swarm mode" || fail "the host's dockerd is in swarm mode"

lap "deploy the stack"
DOCKER_HOST=$(sock n1)
export DOCKER_HOST SWARM_WAIT=150
export LOADGEN_REPLICAS=0 LOADGEN_DURATION=${SWARM_LOAD_DURATION:-15s} LOADGEN_RESTART_CONDITION=none
# make swarm-up: deploy, wait for every server, start one load generator
# (one 15 s round: LOADGEN_RESTART_CONDITION=none).
bounded 200 make -s swarm-up || die "the stack did not become healthy"
pass "make swarm-up: every server running and healthy"

lap "every server healthy on its node"
declare -A node_of
for n in "${nodes[@]}"; do
  hn=$(dk "$n" info --format '{{.Name}}')
  while IFS=$'\t' read -r name status; do
    svc=${name#"$stack"_} svc=${svc%%.*}
    node_of[$svc]=$n
    case $status in
    *'(healthy)'*) pass "$svc on $n ($hn): $status" ;;
    *) [ "$svc" = loadgen ] || fail "$svc on $n ($hn): $status" ;;
    esac
  done < <(dk "$n" ps --filter "label=com.docker.stack.namespace=$stack" --format '{{.Names}}	{{.Status}}')
done
for s in autoreply tinytcp filestream connid moviedb-1 moviedb-2 moviedb-3; do
  [ -n "${node_of[$s]:-}" ] || fail "$s: no container on any node"
done
[ "${node_of[moviedb-1]:-}" = n1 ] && [ "${node_of[moviedb-2]:-}" = n1 ] && [ "${node_of[moviedb-3]:-}" = n1 ] &&
  pass "movie servers on their labelled node n1" || fail "movie servers on ${node_of[moviedb-1]:-?} ${node_of[moviedb-2]:-?} ${node_of[moviedb-3]:-?}"

# What swarm keeps of compose's hardening, and what it drops.
n=${node_of[tinytcp]:-n1}
c=$(dk "$n" ps -q --filter "label=com.docker.swarm.service.name=${stack}_tinytcp" | head -1)
got=$(dk "$n" inspect --format 'ro={{.HostConfig.ReadonlyRootfs}} capdrop={{.HostConfig.CapDrop}} mem={{.HostConfig.Memory}} pids={{.HostConfig.PidsLimit}} secopt={{.HostConfig.SecurityOpt}}' "$c")
expect "tinytcp's container: read-only root, no capabilities, 256 MiB, 512 pids" '^ro=true capdrop=\[ALL\] mem=268435456 pids=512 ' "$got"
expect "tinytcp's container: no no-new-privileges (swarm has no such option)" 'secopt=\[\]$' "$got"

lap "clients on the nodes' published ports"
addr() { ip_of "${node_of[$1]:-n1}"; }
out=$(in_ns br "$bin/tinytcp/tinytcp-client" "$(addr tinytcp)" 40000 2>&1 || true)
expect "tinytcp on $(addr tinytcp):40000: TIME answered" '^<- TIME [0-9]{4}-[0-9]{2}-[0-9]{2}T' "$out"
out=$(in_ns br "$bin/autoreply/autoreply-client" -server "$(addr autoreply):9000" -count 20 -interval 0 -q 2>&1 || true)
expect "autoreply tcp on $(addr autoreply):9000" '^sent=20 replied=20 lost=0 errors=0$' "$out"
out=$(in_ns br "$bin/autoreply/autoreply-client" -protocol udp -server "$(addr autoreply):9000" -count 20 -interval 0 -q 2>&1 || true)
expect "autoreply udp on $(addr autoreply):9000" '^sent=20 replied=20 lost=0 errors=0$' "$out"
out=$(in_ns br "$bin/filestream/filestream-client" -protocol tcp -server "$(addr filestream):9001" -c "hello swarm" -c 100000 -c quit 2>&1 || true)
expect "filestream tcp on $(addr filestream):9001: echo" 'hello swarm' "$out"
out=$(in_ns br "$bin/filestream/filestream-client" -protocol udp -server "$(addr filestream):9001" -c "stream 5 10" -c quit 2>&1 || true)
expect "filestream udp on $(addr filestream):9001: a stream" '[Ss]tream|END|5 packets' "$out"
id="swarm-$$-$RANDOM"
out=$(in_ns br "$bin/connid/connid-client" -timeout 5s HELLO "$(addr connid)" 9002 "$id" 2>&1 || true)
expect "connid on $(addr connid):9002: OK" "^Connection established $id " "$out"
fleet="$(addr moviedb-1):5000,$(addr moviedb-2):5001,$(addr moviedb-3):5002"
out=$(in_ns br "$bin/moviedb/moviedb-client" -addrs "$fleet" get "Alien" 2>&1 || true)
expect "moviedb fleet on $fleet: every server answers" ":5002 +Alien" "$out"
expect "moviedb fleet: the fleet files arrived as configs (they disagree on Alien)" 'servers disagree on "Alien"' "$out"

lap "a client inside the overlay, across nodes, seen as VXLAN on the underlay"
# Traffic between nodes crosses slswarm0 as VXLAN: record it there while a
# client on n3 asks the movie servers on n1 by service name. The filter
# looks inside: UDP 8 + VXLAN 8 + Ethernet 14 + IPv4 20 bytes, then the TCP
# ports; and only at n3's underlay address, since the load generator
# started by swarm-up asks the movie servers too, from whichever node.
in_ns br tshark -q -i "${prefix}0" -f "host $net.3 and udp port 4789 and (udp[50:2] = 5000 or udp[52:2] = 5000)" \
  -c 10 -a duration:30 -w "$work/vxlan.pcap" 2>"$work/tshark.log" &
tshark_pid=$!
until_ok 20 "tshark capturing on ${prefix}0" grep -q 'Capturing on' "$work/tshark.log"
out=$(dk n3 run --rm --network "${stack}_lab" --read-only --cap-drop ALL --entrypoint /moviedb-client socklab/moviedb:dev \
  -addrs moviedb-1:5000,moviedb-2:5000,moviedb-3:5000 get "Alien" 2>&1 || true)
expect "moviedb by service name from n3" 'moviedb-2:5000' "$out"
wait "$tshark_pid" || true
text=$(tshark -r "$work/vxlan.pcap" -d udp.port==4789,vxlan -Y 'tcp.port == 5000' -T fields -e ip.src -e ip.dst 2>/dev/null || true)
expect "the same exchange on ${prefix}0 as VXLAN: n3 to n1 outside, overlay addresses inside" \
  "^$net\\.3,10\\.28\\.0\\.[0-9]+[[:space:]]+$net\\.1,10\\.28\\.0\\.[0-9]+$" "$text"
out=$(dk n3 run --rm --network "${stack}_lab" --read-only --cap-drop ALL --entrypoint /tinytcp-client socklab/tinytcp:dev \
  -c TIME -c QUIT tinytcp 40000 2>&1 || true)
expect "tinytcp by service name from n3" '^<- BYE$' "$out"

lap "capture inside the overlay's namespace on n1"
# What deploy/swarm/README.md tells people: on one node, the overlay is a
# bridge br0 in the namespace 1-<first 10 characters of the network's ID>,
# under the daemon's exec root (its mount namespace here).
netid=$(dk n1 network inspect "${stack}_lab" --format '{{.Id}}')
dpid=$(cat "/run/$prefix-n1/docker.pid")
in_node_overlay() {
  bounded 60 nsenter -t "$dpid" -m nsenter --net="/run/$prefix-n1/netns/1-${netid:0:10}" "$@"
}
in_node_overlay tshark -q -i br0 -f 'tcp port 5000' -c 10 -a duration:30 -w "$work/overlay.pcap" 2>"$work/tshark-overlay.log" &
tshark_pid=$!
until_ok 20 "tshark capturing on br0 in the overlay's namespace" grep -q 'Capturing on' "$work/tshark-overlay.log"
dk n1 run --rm --network "${stack}_lab" --read-only --cap-drop ALL --entrypoint /moviedb-client socklab/moviedb:dev \
  -addrs moviedb-1:5000 get "Alien" >/dev/null 2>&1 || fail "moviedb-1 from a container on n1"
wait "$tshark_pid" || true
text=$(tshark -r "$work/overlay.pcap" -T fields -e ip.src -e ip.dst -e tcp.dstport 2>/dev/null || true)
expect "moviedb-1 exchange on n1's overlay bridge br0, overlay addresses" '^10\.28\.0\.[0-9]+[[:space:]]+10\.28\.0\.[0-9]+[[:space:]]+5000$' "$text"

lap "six load generators over the nodes"
bounded 30 make -s swarm-load N=6
until_ok 120 "6 load generators completed their round" bash -c "[ \$(docker service ps ${stack}_loadgen --format '{{.CurrentState}}' | grep -c '^Complete') -ge 6 ]" || true
states=$(docker service ps "${stack}_loadgen" --format '{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}')
printf '%s\n' "$states"
spread=$(awk '{print $2}' <<<"$states" | sort -u | wc -l)
[ "$spread" -eq 3 ] && pass "load generators ran on all 3 nodes" || fail "load generators ran on $spread nodes"

lap "one merged report from every node's results volume"
SWARM_NODES="$(sock n1) $(sock n2) $(sock n3)"
export SWARM_NODES
report=$(bounded 120 make -s swarm-results 2>&1 || true)
printf '%s\n' "$report"
expect "merged report covers 6 generators" '\(6 generators: ' "$report"
expect "merged report: traffic flowed" '^ *successes +[1-9][0-9]*' "$report"
expect "merged report: no errors" '^ *errors +0$' "$report"

lap "a movie server keeps its volume when its task is replaced"
title="Swarm Film $$"
out=$(in_ns br "$bin/moviedb/moviedb-client" -addrs "$(ip_of n1):5001" add "$title" year=2026 director="The Lab" \
  genres=Drama runtime=90 rating=NR 2>&1) || fail "moviedb-2: add $title: $out"
old_task=$(docker service ps -q --filter desired-state=running "${stack}_moviedb-2")
bounded 90 docker service update --force --detach=false --quiet "${stack}_moviedb-2" >/dev/null || fail "moviedb-2: update --force"
new_task=$(docker service ps -q --filter desired-state=running "${stack}_moviedb-2")
[ -n "$new_task" ] && [ "$new_task" != "$old_task" ] && pass "moviedb-2: a new task" || fail "moviedb-2: task $old_task, then $new_task"
out=$(in_ns br "$bin/moviedb/moviedb-client" -addrs "$(ip_of n1):5001" get "$title" 2>&1 || true)
expect "moviedb-2 on its labelled node still has \"$title\"" "$title \(2026\)" "$out"

# The victim: of n2 and n3, the node that runs more servers. Should the
# scheduler have put none on either, one server is rescheduled (the
# scheduler prefers the nodes with fewer tasks).
victim_pick() {
  local n2=0 n3=0 s
  for s in "${!node_of[@]}"; do
    case $s in loadgen | moviedb-*) continue ;; esac
    case ${node_of[$s]} in n2) n2=$((n2 + 1)) ;; n3) n3=$((n3 + 1)) ;; esac
  done
  if [ "$n2" -gt "$n3" ]; then victim=n2; elif [ "$n3" -gt 0 ]; then victim=n3; else victim=; fi
}
victim_pick
for _ in 1 2 3; do
  [ -z "$victim" ] || break
  bounded 60 docker service update --force --detach=false --quiet "${stack}_tinytcp" >/dev/null || true
  node_of[tinytcp]=n$(docker service ps "${stack}_tinytcp" --filter desired-state=running --format '{{.Node}}' | sed 's/.*-n//')
  victim_pick
done
[ -n "$victim" ] || die "no server runs on n2 or n3; nothing to move"

lap "kill node $victim (dockerd, containerd, containers)"
moved=()
for s in "${!node_of[@]}"; do [ "${node_of[$s]}" != "$victim" ] || [ "$s" = loadgen ] || moved+=("$s"); done
echo "on $victim: ${moved[*]}"
t_kill=$SECONDS
kill_node "$victim"
unset 'SWARM_NODES'
until_ok 60 "$victim seen down" bash -c "docker node ls --format '{{.Hostname}} {{.Status}}' | grep -q '^$prefix-$victim Down'"
pass "$victim down after $((SECONDS - t_kill))s"
# running_elsewhere S: service S has a task running (so healthy) on a node
# other than the victim.
running_elsewhere() {
  docker service ps "${stack}_$1" --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' |
    grep -v "^$prefix-$victim " | grep -q '^[^ ]* Running'
}
for s in "${moved[@]}"; do
  if until_ok 120 "$s running again elsewhere" running_elsewhere "$s"; then
    pass "$s running and healthy on $(docker service ps "${stack}_$s" --filter desired-state=running --format '{{.Node}}' |
      grep -v "$victim" | head -1) $((SECONDS - t_kill))s after the kill"
  fi
done
tiny=$(docker service ps "${stack}_tinytcp" --filter desired-state=running --format '{{.Node}}' | head -1)
out=$(in_ns br "$bin/tinytcp/tinytcp-client" -c TIME -c QUIT "$net.${tiny##*-n}" 40000 2>&1 || true)
expect "tinytcp answers on $tiny, where it runs now" '^<- BYE$' "$out"

lap "make swarm-down, with a node down"
bounded 90 make -s swarm-down >/dev/null || fail "make swarm-down"
left_services=$(docker service ls -q --filter "label=com.docker.stack.namespace=$stack")
[ -z "$left_services" ] && pass "the stack is gone" || fail "services left after make swarm-down: $left_services"
