#!/usr/bin/env bash
# CI: Debian's Chromium for the Playwright browser tests (Playwright cannot download a browser
# here; the tests launch /usr/bin/chromium). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt-get or dpkg (an unattended upgrade, a parallel set-up step) to finish.
APT=(apt-get -o DPkg::Lock::Timeout=600)
if ! command -v chromium >/dev/null; then
    echo "ci-browser: installing chromium" >&2
    "${APT[@]}" update -q
    "${APT[@]}" install -y -q chromium fonts-dejavu-core
fi
