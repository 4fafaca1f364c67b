#!/usr/bin/env bash
# Services the test suite needs that the tests cannot start themselves.
# (The demo API, S3 and Snowflake-compatible servers are started by the tests.)
set -euo pipefail

# PostgreSQL on 127.0.0.1:5432: machines of this kind run it; start it if it stopped.
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
