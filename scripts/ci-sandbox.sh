#!/usr/bin/env bash
# CI: bubblewrap, the sandbox of the `subprocess` runner (runners/sandbox.py).
# Installs Debian's bubblewrap if `bwrap` is missing, then checks that it can create a sandbox
# here (namespaces allowed). Idempotent: a second call finds it in place and returns at once.
# Needs root for the install.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! command -v bwrap >/dev/null; then
    echo "ci-sandbox: installing bubblewrap" >&2
    apt-get -o DPkg::Lock::Timeout=300 update -q
    apt-get -o DPkg::Lock::Timeout=300 install -y -q bubblewrap
fi

if ! bwrap --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin \
        --proc /proc --dev /dev --unshare-all --die-with-parent true; then
    echo "ci-sandbox: bubblewrap is installed but cannot create a sandbox on this machine" >&2
    exit 1
fi
echo "ci-sandbox: $(bwrap --version) ready" >&2
