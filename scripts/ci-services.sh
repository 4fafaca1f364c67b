#!/usr/bin/env bash
# Services the test suite needs that the tests cannot start themselves.
# (The demo API, S3 and Snowflake-compatible servers are started by the tests.) Idempotent.
set -euo pipefail

# PostgreSQL on 127.0.0.1:5432: machines of this kind run it; start it if it stopped.
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi

# Redis on 127.0.0.1:6379 (the broker for distributed runs; tests/distributed start their own
# redis-server on a free port, so the program must be installed): Debian's, installed if
# missing, and started if nothing answers there, keeping nothing on disk.
if ! command -v redis-server >/dev/null; then
    echo "ci-services: installing redis-server" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends redis-server
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    echo "ci-services: starting redis-server on 127.0.0.1:6379" >&2
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes
fi
