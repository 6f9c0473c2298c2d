#!/usr/bin/env bash
# install-compose.sh — make sure `docker compose` (Compose v2 CLI plugin) works.
#
# If `docker compose version` already works, this does nothing. Otherwise it
# builds Docker Compose from source fetched through the Go module proxy and
# installs it as a Docker CLI plugin:
#     ${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose
#
# Why build from source: Debian bookworm ships neither docker-compose-plugin
# nor docker-compose-v2 (only python docker-compose 1.29.2), and no container
# registry / GitHub release download is reachable here. Why not plain
# `go install .../cmd@VERSION`: recent Compose go.mod files carry exclude /
# replace directives, which `go install pkg@version` refuses. Building inside
# a copy of the downloaded module works for every version.
#
# Tested: v2.40.3 (default) and v2.29.7 with Docker Engine 20.10.24 (API 1.41),
# go 1.26. Build takes ~2 min on 2 CPUs with a cold module cache.
#
# Environment:
#   COMPOSE_VERSION   tag to build (default v2.40.3)
#   COMPOSE_MODULE    module path (default github.com/docker/compose/v2)
#   GO                go binary (default: go in PATH, else /usr/local/go/bin/go)
#   FORCE=1           rebuild even if `docker compose` already works
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
COMPOSE_MODULE="${COMPOSE_MODULE:-github.com/docker/compose/v2}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
TARGET="$PLUGIN_DIR/docker-compose"

log() { printf 'install-compose: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found in PATH"

if [[ "${FORCE:-0}" != 1 ]] && docker compose version >/dev/null 2>&1; then
	log "already present: $(docker compose version 2>&1) — nothing to do"
	exit 0
fi

GO="${GO:-}"
if [[ -z "$GO" ]]; then
	if command -v go >/dev/null 2>&1; then
		GO="$(command -v go)"
	elif [[ -x /usr/local/go/bin/go ]]; then
		GO=/usr/local/go/bin/go
	else
		die "go not found (set GO=/path/to/go)"
	fi
fi

# Never let the go command try to download another toolchain; resolve modules
# through the module proxy; allow go.sum gaps to be filled (-mod=mod).
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

log "docker compose not available; building $COMPOSE_MODULE@$COMPOSE_VERSION"
log "using $("$GO" version) (GOPROXY=$("$GO" env GOPROXY))"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/install-compose.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log "downloading module source via the Go module proxy"
# `go mod download -json` prints {"Dir": ...} (and "Error" on failure).
# Run it from the empty work dir so no surrounding go.mod/go.work interferes.
dl_json="$(cd "$WORK" && GOWORK=off "$GO" mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION")" || {
	printf '%s\n' "$dl_json" >&2
	die "go mod download failed"
}
src_dir="$(printf '%s\n' "$dl_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -n "$src_dir" && -f "$src_dir/go.mod" ]] || {
	printf '%s\n' "$dl_json" >&2
	die "could not locate downloaded module source"
}

# The module cache is read-only; build in a writable copy.
cp -R "$src_dir" "$WORK/src"
chmod -R u+w "$WORK/src"

log "building (this takes a couple of minutes on a cold cache)"
start=$SECONDS
(
	cd "$WORK/src"
	GOWORK=off "$GO" build -trimpath \
		-ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
		-o "$WORK/docker-compose" ./cmd
)
log "built in $((SECONDS - start))s"

mkdir -p "$PLUGIN_DIR"
install -m 0755 "$WORK/docker-compose" "$TARGET.tmp"
mv -f "$TARGET.tmp" "$TARGET"
log "installed $TARGET"

docker compose version >/dev/null 2>&1 || die "installed, but 'docker compose version' still fails (is $PLUGIN_DIR searched by this docker CLI?)"
log "ok: $(docker compose version 2>&1)"
