#!/usr/bin/env bash
# CI: a running Docker engine with the runner image, for the docker runner's tests.
# Installs Debian's docker.io and debootstrap if missing, starts dockerd in the background if no
# engine answers, and builds the runner image if it is missing or stale. Idempotent: a second
# call finds everything in place and returns in well under a second. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt-get or dpkg (an unattended upgrade, a parallel set-up step) to finish.
APT=(apt-get -o DPkg::Lock::Timeout=600)

DOCKERD_LOG="${TRIBUTARY_DOCKERD_LOG:-/var/log/tributary-dockerd.log}"
ENGINE_WAIT_S=60

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "ci-docker: installing ${missing[*]}" >&2
    "${APT[@]}" update -q
    "${APT[@]}" install -y -q "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
    echo "ci-docker: starting dockerd (log: $DOCKERD_LOG)" >&2
    # setsid: the engine must outlive this script and the CI step that called it.
    setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq "$ENGINE_WAIT_S"); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        echo "ci-docker: dockerd did not answer within ${ENGINE_WAIT_S} s; its log ends with:" >&2
        tail -n 20 "$DOCKERD_LOG" >&2
        exit 1
    fi
fi

bash docker/build-base-image.sh
