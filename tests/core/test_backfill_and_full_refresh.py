"""Backfill (a run from a given state, which becomes current only if asked) and full refresh
(from {}, replacing the table atomically when the run commits, whatever the load type), on
DuckDB and on PostgreSQL as the destination."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import psycopg
import pytest

from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed, edit_feed
from core.runs import RunOptions, create_run, get_run
from common.settings import get_settings
from core.state import current_state, set_state
from tests.helpers import wait_until

# Records `start`..`start+2` (the state's "next", 0 at first); the script waits for a file to
# exist before it ends when the run's state says so, so that a reader can look mid-run.
SCRIPT = """
import os, time
from lib import outputStream, metadata
start = metadata.get("next", 0)
for i in range(start, start + 3):
    outputStream.write({"id": i, "batch": metadata.get("batch", "first")})
gate = metadata.get("gate")
while gate and not os.path.exists(gate):
    time.sleep(0.05)
if metadata.get("fail"):
    raise RuntimeError("the API broke mid-refresh")
metadata.save({"next": start + 3})
"""


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tributary, monkeypatch):
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "postgres")
        monkeypatch.setenv("TRIBUTARY_POSTGRES_URL", url)

        def rows():
            with psycopg.connect(url) as con:
                return con.execute("SELECT id, batch FROM orders ORDER BY id").fetchall()
    else:
        def rows():
            with duckdb.connect(str(Path(tributary) / "warehouse.duckdb"), read_only=True) as con:
                return con.execute("SELECT id, batch FROM orders ORDER BY id").fetchall()
    create_feed(FeedSpec(name="orders", script=SCRIPT, destinations=[request.param], load_type="incremental"))
    return rows


def run(options: RunOptions | None = None):
    return execute_run(create_run("orders", options=options).id)


def test_a_backfill_runs_from_the_given_state_and_leaves_the_current_one(warehouse):
    assert run().status == "succeeded" and current_state("orders") == {"next": 3}
    backfill = run(RunOptions(state={"next": 100, "batch": "backfill"}))
    assert backfill.status == "succeeded", backfill.error
    assert backfill.state_before == {"next": 100, "batch": "backfill"}
    assert current_state("orders") == {"next": 3}  # not asked to become current
    assert [r for r in warehouse() if r[1] == "backfill"] == [(100, "backfill"), (101, "backfill"), (102, "backfill")]

    kept = run(RunOptions(state={"next": 200}, commit_state=True))
    assert kept.status == "succeeded" and current_state("orders") == {"next": 203}


def test_a_full_refresh_replaces_the_table_atomically_when_the_run_commits(warehouse):
    set_state("orders", {"next": 10})
    assert run().status == "succeeded"
    assert warehouse() == [(10, "first"), (11, "first"), (12, "first")]

    # The script waits for a file in its own work dir (all it sees of this machine).
    edit_feed("orders", script=SCRIPT.replace('metadata.get("gate")', "'release-me'"))
    refresh = create_run("orders", options=RunOptions(full_refresh=True))
    gate = get_settings().work_root / refresh.id / "release-me"
    worker = threading.Thread(target=execute_run, args=(refresh.id,))
    worker.start()
    try:
        wait_until(lambda: get_run(refresh.id).status == "running", 30, "the refresh did not start")
        assert warehouse() == [(10, "first"), (11, "first"), (12, "first")]  # readers see the old rows
    finally:
        gate.touch()
        worker.join(60)
    done = get_run(refresh.id)
    assert done.status == "succeeded", done.error
    assert done.state_before == {}
    assert warehouse() == [(0, "first"), (1, "first"), (2, "first")]  # only the new ones
    assert current_state("orders") == {"next": 3}


def test_a_failed_full_refresh_leaves_the_old_contents_and_state(warehouse):
    set_state("orders", {"next": 10})
    assert run().status == "succeeded"
    edit_feed("orders", script=SCRIPT.replace('metadata.get("fail")', "True"))
    failed = run(RunOptions(full_refresh=True))
    assert failed.status == "failed" and "the API broke mid-refresh" in failed.error
    assert warehouse() == [(10, "first"), (11, "first"), (12, "first")]
    assert current_state("orders") == {"next": 13}
