"""Exactly once, whatever dies when: the crash-point matrix.

Each case executes a run in a child process with the fault hook set (TRIBUTARY_FAULT_POINT,
common/faults.py), so that the child SIGKILLs itself at one step of the run; then, in this
process, recovery runs (Services.start, as at the app's or the CLI's start) and one more run
executes (the retry recovery queued, if it queued one, else a new run). Every record must then
be in each destination's table exactly once, the feed's state must be the last committed one,
and the run history must say what happened: the killed run succeeded (recovery finished its
commit) or failed, and is retried only when it failed.

The point inside a destination's load before its COMMIT has no hook in the destinations'
code: the child wraps the ledger write, the last statement before COMMIT, with the hook.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from common.faults import FAULT_POINT_ENV
from common.settings import get_settings
from core import bootstrap
from core.feeds import FeedSpec, create_feed
from core.runs import list_runs
from core.state import current_state, state_history
from storage.db import session_scope
from storage.lookups import feed_by_name
from storage.models import ActiveRun, Run
from tests.helpers import warehouse_rows

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 60_000  # two spool parts (runners/lib/_runtime.py RECORDS_PER_PART = 50_000)
FEED = "orders"
SCRIPT = f"""
from lib import outputStream, metadata
start = metadata.get("next", 0)
for i in range(start, start + {RECORDS}):
    outputStream.write({{"id": i, "name": "order %d" % i}})
metadata.save({{"next": start + {RECORDS}}})
"""

CHILD = """
import os, sys
sys.path.insert(0, os.getcwd())
from common.faults import FAULT_POINT_ENV, fault_point
if os.environ[FAULT_POINT_ENV].startswith("destination_before_commit"):
    from storage.destinations.sql_warehouse import SqlDestination
    write_ledger_row = SqlDestination._record
    def _record(self, *args, **kwargs):
        write_ledger_row(self, *args, **kwargs)
        fault_point("destination_before_commit")  # rows and ledger row written, COMMIT not sent
    SqlDestination._record = _record
from core import bootstrap
run = bootstrap.build().start().start_run(sys.argv[1], wait=True)
print(run.status, run.error)
"""

# point -> the killed run's status after recovery, per destination set
ONE = {
    "script_running": "failed",
    "part_staged": "failed",  # the first of the run's two parts
    "part_staged:2": "failed",  # the last
    "destination_before_commit": "failed",
    "destination_committed": "succeeded",
    "store_committed": "succeeded",
}
TWO = {
    "script_running": "failed",
    "part_staged": "failed",
    "part_staged:2": "failed",
    "destination_before_commit:1": "failed",  # inside the first load: no destination holds the run
    "destination_before_commit:2": "succeeded",  # the first committed: recovery loads the second
    "destination_committed:1": "succeeded",  # likewise, killed before the second load began
    "destination_committed:2": "succeeded",  # both hold it: recovery finishes the commit
    "store_committed": "succeeded",
}
CASES = ([("duckdb", point, status) for point, status in ONE.items()]
         + [("postgres", point, status) for point, status in ONE.items()]
         + [("duckdb+postgres", point, status) for point, status in TWO.items()]
         # the same, with the store on PostgreSQL too (in the warehouse's database)
         + [("store@postgres:duckdb+postgres", point, status) for point, status in TWO.items()])


@pytest.fixture
def destinations(request, tributary, monkeypatch):
    store, _, names = request.param.rpartition(":")
    names = names.split("+")
    url = None
    if "postgres" in names:
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "postgres")
        monkeypatch.setenv("TRIBUTARY_POSTGRES_URL", url)
    if store == "store@postgres":
        monkeypatch.setenv("TRIBUTARY_DATABASE_URL", url)
    create_feed(FeedSpec(name=FEED, script=SCRIPT, destinations=names[-1:], retries=1, retry_backoff_s=1))
    if len(names) > 1:  # no warehouse offers both: set on the feed as it is stored
        with session_scope() as session:
            feed = feed_by_name(session, FEED)
            feed.destinations = names
            session.add(feed)
    return names, url, tributary


def _rows(name: str, url: str | None, data_dir: Path) -> tuple:
    sql = f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {FEED}"
    if name == "duckdb":
        return warehouse_rows(data_dir, sql)[0]
    with psycopg.connect(url) as con:
        return con.execute(sql).fetchone()


def _kill_a_run_at(point: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{FAULT_POINT_ENV: point})
    return subprocess.run([sys.executable, "-c", CHILD, FEED], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(("destinations", "point", "expected"), CASES, indirect=["destinations"],
                         ids=[f"{d}-{p}" for d, p, _ in CASES])
def test_every_record_is_loaded_exactly_once_whatever_dies_when(destinations, point, expected):
    names, url, data_dir = destinations
    child = _kill_a_run_at(point)
    assert child.returncode == -signal.SIGKILL, f"the fault point {point} was not reached: {child.stdout}{child.stderr}"
    [killed] = list_runs(FEED)
    assert killed.status in ("running", "loading", "succeeded")  # as the dead process left it

    services = bootstrap.build().start()  # recovery, as at start-up
    killed = services.execute_run(killed.id)  # a settled run is not executed again
    assert killed.status == expected, killed.error
    assert killed.pending_outcome is None
    with session_scope() as session:
        queued = session.query(Run).filter(Run.status == "queued").all()
    if expected == "failed":
        assert "interrupted" in killed.error
        assert killed.records_loaded == 0 and killed.state_after == killed.state_before == {}
        [retry] = queued  # a failed run is retried
        after = services.execute_run(retry.id)
    else:
        assert killed.records_loaded == RECORDS and killed.state_after == {"next": RECORDS}
        assert queued == []  # a run that succeeded is not retried
        after = services.start_run(FEED, wait=True)
    assert after.status == "succeeded", after.error

    total = RECORDS * (2 if expected == "succeeded" else 1)
    for name in names:
        assert _rows(name, url, data_dir) == (total, total, 0, total - 1), name
    assert current_state(FEED) == {"next": total}
    committed = [{"next": RECORDS * (n + 1)} for n in range(total // RECORDS)]
    assert [h.state for h in state_history(FEED)] == committed
    history = list_runs(FEED)
    assert [r.status for r in history] == ["succeeded", expected]
    assert [r.records_loaded for r in history] == [RECORDS, RECORDS if expected == "succeeded" else 0]
    assert history[0].state_before == ({"next": RECORDS} if expected == "succeeded" else {})
    with session_scope() as session:
        assert session.query(ActiveRun).count() == 0
    assert not any(p.name.startswith(killed.id) for p in get_settings().work_root.iterdir())


@pytest.mark.parametrize("destinations", ["duckdb"], indirect=True)
def test_the_clis_next_command_settles_a_run_its_killed_predecessor_left_committing(destinations):
    """`core.cli run`, killed after the warehouse COMMIT; the next `run` recovers the killed run
    at its start (the commit is finished, not loaded again, not retried) and runs once more."""
    _, _, data_dir = destinations

    def cli(*args: str, point: str | None = None) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        if point:
            env[FAULT_POINT_ENV] = point
        return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)

    assert cli("run", FEED, point="destination_committed").returncode == -signal.SIGKILL
    after = cli("run", FEED)
    assert after.returncode == 0, after.stderr
    assert f"succeeded: {RECORDS} records loaded" in after.stdout
    assert warehouse_rows(data_dir, f"SELECT count(*), count(DISTINCT id) FROM {FEED}") == [(2 * RECORDS,) * 2]
    assert [(r.status, r.records_loaded) for r in list_runs(FEED)] == [("succeeded", RECORDS)] * 2
    assert current_state(FEED) == {"next": 2 * RECORDS}
