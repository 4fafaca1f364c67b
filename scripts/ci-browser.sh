#!/usr/bin/env bash
# CI: Debian's Chromium for the Playwright browser tests (Playwright cannot download a browser
# here; the tests launch /usr/bin/chromium). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v chromium >/dev/null; then
    echo "ci-browser: installing chromium" >&2
    apt-get update -q
    apt-get install -y -q chromium fonts-dejavu-core
fi
