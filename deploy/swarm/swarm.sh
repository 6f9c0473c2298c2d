#!/usr/bin/env bash
# The socklab stack on a Docker Swarm: what `make swarm-up`, `swarm-load`,
# `swarm-results` and `swarm-down` run. Talks to a manager through the
# ordinary docker client (DOCKER_HOST or the current docker context), reads
# .env as compose does (a variable already set in the environment wins),
# and needs the socklab images on every node (deploy/swarm/README.md).
#
#   swarm.sh up [N]        deploy, wait until every server is running and
#                          healthy, then run N load generators (default 0)
#   swarm.sh wait          wait until every server is running and healthy
#   swarm.sh load N        scale the load generators to N
#   swarm.sh results [D]   gather every node's result files and merge them
#                          (D: only runs that ended in the last D, e.g. 10m)
#   swarm.sh down          remove the stack (volumes stay on their nodes)
#
# SWARM_NODES lists how to reach each node's daemon for `results`: docker
# hosts (ssh://user@node, unix:///path.sock, tcp://...) or context names,
# separated by spaces. Generators on different nodes write to different
# volumes; a node left out is missing from the report. SWARM_WAIT bounds
# the wait in seconds (default 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
stack=${SOCKLAB_STACK:-socklab}
wait_secs=${SWARM_WAIT:-300}

# load_env exports the variables of .env that the environment does not set.
load_env() {
  local line key val
  [ -f "$root/.env" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in '' | '#'*) continue ;; esac
    key=${line%%=*} val=${line#*=}
    [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [[ $val =~ ^\"(.*)\"$ || $val =~ ^\'(.*)\'$ ]] && val=${BASH_REMATCH[1]}
    [ -n "${!key+x}" ] || export "$key=$val"
  done <"$root/.env"
}

# wait_servers returns once every server has its one task running (swarm
# reports a task running only after its healthcheck passed), or fails
# after SWARM_WAIT seconds naming those that are not.
wait_servers() {
  local end=$((SECONDS + wait_secs)) pending list s
  while :; do
    pending=()
    if list=$(docker service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Name}} {{.Replicas}}'); then
      list=$(grep -v "^${stack}_loadgen " <<<"$list" || true)
      [ -n "$list" ] || pending=("(no services of the stack $stack)")
      while read -r s replicas; do
        [ -z "$s" ] || [ "$replicas" = 1/1 ] || pending+=("$s")
      done <<<"$list"
    else
      pending=("(the manager does not answer)")
    fi
    [ "${#pending[@]}" -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$end" ]; then
      echo "swarm: not running and healthy after ${wait_secs}s: ${pending[*]}" >&2
      for s in "${pending[@]}"; do docker service ps --no-trunc "$s" >&2 2>/dev/null || true; done
      return 1
    fi
    sleep 1
  done
}

up() {
  load_env
  docker stack deploy --resolve-image never --detach=true -c "$here/stack.yml" "$stack"
  wait_servers
  echo "swarm: every server of $stack is running and healthy"
  load "${1:-0}"
}

load() {
  docker service scale --detach=true "${stack}_loadgen=${1:?number of load generators}" >/dev/null
  docker service ls --filter "name=${stack}_loadgen" --format '{{.Name}} {{.Replicas}}'
}

# results copies /results out of each node's results volume (through a
# container created and never started: the image has no shell) and merges
# all the files with loadgen merge.
results() {
  local since=${1:-} n=0 node args merge files
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if [ -z "${SWARM_NODES:-}" ]; then
    echo "swarm: SWARM_NODES is not set; gathering this daemon's results only" >&2
  fi
  for node in ${SWARM_NODES:-""}; do
    n=$((n + 1))
    args=()
    case $node in
    *://*) args=(-H "$node") ;;
    ?*) args=(--context "$node") ;;
    esac
    mkdir -p "$tmp/$n"
    local id
    id=$(docker "${args[@]}" create --entrypoint /app -v "${stack}_results:/results:ro" socklab/loadgen:dev)
    if ! docker "${args[@]}" cp "$id:/results/." - | tar -x -C "$tmp/$n"; then
      docker "${args[@]}" rm -v "$id" >/dev/null || true
      echo "swarm: cannot copy the results out of ${node:-this daemon}" >&2
      return 1
    fi
    docker "${args[@]}" rm -v "$id" >/dev/null
  done
  files=$(find "$tmp" -name '*.json' -type f | sort)
  if [ -z "$files" ]; then
    echo "swarm: no result files on ${SWARM_NODES:-this node}" >&2
    return 1
  fi
  merge=${LOADGEN:-$root/bin/image/loadgen/app}
  if [ -x "$merge" ]; then
    # shellcheck disable=SC2086 # one file per word; the names are generated
    "$merge" merge ${since:+-since "$since"} $files
  else
    # shellcheck disable=SC2086
    (cd "$root/services/loadgen" && go run ./cmd/loadgen merge ${since:+-since "$since"} $files)
  fi
}

down() {
  docker stack rm --detach=false "$stack"
}

case ${1:-} in
up) up "${2:-0}" ;;
wait) wait_servers ;;
load) load "${2:-}" ;;
results) results "${2:-}" ;;
down) down ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
