#!/usr/bin/env bash
# CI: bubblewrap, the sandbox of the `subprocess` runner (runners/sandbox.py), and slirp4netns,
# which gives runs a network of their own (TRIBUTARY_SANDBOX_NETWORK=private).
# Installs Debian's bubblewrap and slirp4netns if missing, then checks that bwrap can create a
# sandbox here (namespaces allowed). Idempotent: a second call finds them and returns at once.
# Needs root for the install.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v slirp4netns >/dev/null || missing+=(slirp4netns)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "ci-sandbox: installing ${missing[*]}" >&2
    apt-get -o DPkg::Lock::Timeout=300 update -q
    apt-get -o DPkg::Lock::Timeout=300 install -y -q "${missing[@]}"
fi

if ! bwrap --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin \
        --proc /proc --dev /dev --unshare-all --die-with-parent true; then
    echo "ci-sandbox: bubblewrap is installed but cannot create a sandbox on this machine" >&2
    exit 1
fi
echo "ci-sandbox: $(bwrap --version) and $(slirp4netns --version | head -1) ready" >&2
