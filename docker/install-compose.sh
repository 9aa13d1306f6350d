#!/usr/bin/env bash
# Install the Docker Compose v2 CLI plugin (`docker compose`) so `docker compose config` can validate
# docker-compose.yaml on machines that have the Docker CLI but no compose plugin.
#
# Compose is built from its Go module (github.com/docker/compose/v2, fetched and checksum-verified through
# the Go module proxy and sumdb): no release binary is downloaded. The binary is cached under
# .cache/compose/<version>/ and copied to the CLI plugin directory. Idempotent: a working `docker compose`
# or a cached binary makes it a no-op / a copy. A first build takes ~3 minutes on 2 cores.
#
# Env: COMPOSE_VERSION (default below), COMPOSE_CACHE_DIR, DOCKER_CONFIG (plugin dir parent, ~/.docker).
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
COMPOSE_MODULE="github.com/docker/compose/v2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${COMPOSE_CACHE_DIR:-$ROOT/.cache/compose}"
BIN="$CACHE/$COMPOSE_VERSION/docker-compose"
PLUGIN="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"

if docker compose version >/dev/null 2>&1; then
    echo "docker compose already available: $(docker compose version --short)"
    exit 0
fi

if [[ ! -x "$BIN" ]]; then
    command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"  # the official tarball's location
    if ! command -v go >/dev/null 2>&1; then
        echo "install-compose: Go is needed to build docker compose $COMPOSE_VERSION (none on PATH)" >&2
        exit 1
    fi
    echo "Building docker compose $COMPOSE_VERSION from the Go module proxy (cache: $CACHE)"
    # A private module/build cache keeps the build reproducible and lets us delete it afterwards (~1.4 GB).
    export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gobuild" CGO_ENABLED=0
    export GOFLAGS="${GOFLAGS:-} -modcacherw"
    # `go install module/cmd@version` refuses modules whose go.mod has exclude directives (compose's does),
    # so download the module and build inside it: its own go.mod/go.sum pin every dependency.
    src="$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -d "$src" ]] || { echo "install-compose: module download failed" >&2; exit 1; }
    mkdir -p "$(dirname "$BIN")"
    (cd "$src" && go build -trimpath \
        -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
        -o "$BIN.tmp" ./cmd)
    mv "$BIN.tmp" "$BIN"
    go clean -cache -modcache
fi

mkdir -p "$(dirname "$PLUGIN")"
install -m 0755 "$BIN" "$PLUGIN"
docker compose version
