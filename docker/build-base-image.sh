#!/usr/bin/env bash
# Build the runner image with no registry: debootstrap a minimal Debian bookworm into a folder,
# `docker import` it as the base, then run docker/Dockerfile on top of it, so the image is the
# one a pulling engine builds from debian:bookworm-slim.
#
#     docker/build-base-image.sh [--force]
#
# Idempotent and quick when there is nothing to do: the image carries a label with the hash of
# what went into it (Dockerfile, requirements, lib), and is rebuilt only when that changes.
# The imported Debian is kept as its own image (TRIBUTARY_ROOTFS_IMAGE), so a rebuild skips
# debootstrap. Needs root (debootstrap), debootstrap and a running Docker engine.
#
# Environment: TRIBUTARY_DOCKER_IMAGE (default tributary-runner:latest), TRIBUTARY_ROOTFS_IMAGE
# (default tributary-debian:bookworm), DEBIAN_MIRROR, and the CA bundle for pip behind a
# TLS-intercepting proxy: TRIBUTARY_DOCKER_CA_BUNDLE, else REQUESTS_CA_BUNDLE, else
# SSL_CERT_FILE (the same order the docker runner uses; "none" turns it off).
set -euo pipefail

TEMP_DIRS=()
trap 'rm -rf "${TEMP_DIRS[@]}"' EXIT

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE="${TRIBUTARY_DOCKER_IMAGE:-tributary-runner:latest}"
ROOTFS_IMAGE="${TRIBUTARY_ROOTFS_IMAGE:-tributary-debian:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEB_CACHE="${TRIBUTARY_DEB_CACHE:-/var/cache/tributary/debootstrap}"
CA_BUNDLE="${TRIBUTARY_DOCKER_CA_BUNDLE:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}"
[ "$CA_BUNDLE" = "none" ] && CA_BUNDLE=""
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

# The Docker CLI may be newer than the engine and default to BuildKit, which needs the buildx
# plugin; the classic builder is in every engine.
export DOCKER_BUILDKIT=0

log() { echo "build-base-image: $*" >&2; }

context_hash() {
    (
        cd "$ROOT"
        sha256sum docker/Dockerfile docker/requirements.txt
        find runners/lib -name '__pycache__' -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum
    ) | sha256sum | cut -c1-16
}

image_label() {
    docker image inspect -f '{{ index .Config.Labels "tributary.context" }}' "$1" 2>/dev/null || true
}

ensure_rootfs_image() {
    if docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
        log "using the imported Debian $ROOTFS_IMAGE"
        return
    fi
    local rootfs
    rootfs="$(mktemp -d /var/tmp/tributary-rootfs.XXXXXX)"
    TEMP_DIRS+=("$rootfs")
    mkdir -p "$DEB_CACHE"
    log "debootstrap bookworm into $rootfs (about 40 s; packages cached in $DEB_CACHE)"
    debootstrap --variant=minbase --cache-dir="$DEB_CACHE" \
        --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$MIRROR" >&2
    # Package lists and downloaded .debs are of no use in the image.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    log "importing it as $ROOTFS_IMAGE"
    tar -C "$rootfs" -c . | docker import - "$ROOTFS_IMAGE" >/dev/null
}

build_image() {
    local hash="$1" context
    context="$(mktemp -d /var/tmp/tributary-context.XXXXXX)"
    TEMP_DIRS+=("$context")
    # The same paths the Dockerfile expects from the repository root, and nothing else.
    mkdir -p "$context/docker" "$context/runners"
    cp "$ROOT/docker/Dockerfile" "$ROOT/docker/requirements.txt" "$context/docker/"
    cp -r "$ROOT/runners/lib" "$context/runners/lib"
    find "$context/runners/lib" -name '__pycache__' -prune -exec rm -rf {} +
    if [ -n "$CA_BUNDLE" ]; then
        log "pip will trust the CA bundle $CA_BUNDLE"
        cp "$CA_BUNDLE" "$context/docker/build-ca.crt"
    fi
    log "building $IMAGE on $ROOTFS_IMAGE"
    # Host network: the build's pip must reach the package index even where the engine's
    # bridge has no route out; these steps are ours, not a feed's.
    docker build --network host --force-rm --pull=false -f "$context/docker/Dockerfile" \
        --build-arg "BASE=$ROOTFS_IMAGE" --label "tributary.context=$hash" -t "$IMAGE" "$context" >&2
}

main() {
    docker info >/dev/null 2>&1 || { log "the Docker engine is not reachable (is dockerd running?)"; exit 1; }
    local hash
    hash="$(context_hash)"
    if [ "$FORCE" = 0 ] && [ "$(image_label "$IMAGE")" = "$hash" ]; then
        log "$IMAGE is up to date ($hash)"
        return
    fi
    command -v debootstrap >/dev/null || docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1 \
        || { log "debootstrap is missing: apt-get install -y debootstrap"; exit 1; }
    ensure_rootfs_image
    build_image "$hash"
    docker run --rm --network none "$IMAGE" >&2
    log "$IMAGE is ready ($hash)"
}

main
