"""The two-phase commit's other paths, in one process: loads that fail in a live process,
recovery that cannot settle a run yet or has lost its spool, a store that cannot record or be
read. The crash-point matrix (test_crash_matrix.py) kills real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import TributaryError
from core import bootstrap
from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed
from core.runs import create_run, get_run, pending_outcome, read_log
from core.services.recovery import recover_interrupted_runs
from core.state import current_state
from storage.db import session_scope
from storage.destinations.duckdb import DuckDBDestination
from storage.destinations.parquet import ParquetDestination
from storage.lookups import feed_by_name
from storage.models import ActiveRun, Run
from tests.helpers import warehouse_rows

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
from lib import outputStream, metadata
start = metadata.get("next", 0)
for i in range(start, start + 5):
    outputStream.write({"id": i})
metadata.save({"next": start + 5})
"""
DEAD = f"{socket.gethostname()}:999999:1"  # a process of this host that is not alive


def _feed(destinations=("duckdb",)) -> None:
    create_feed(FeedSpec(name="orders", script=SCRIPT, destinations=list(destinations)))


def test_a_load_failing_after_another_destination_committed_names_the_one_that_holds_the_run(tributary, monkeypatch):
    _feed(("duckdb", "parquet"))

    def full(self, request):
        raise OSError("No space left on device")

    monkeypatch.setattr(ParquetDestination, "load", full)
    failed = execute_run(create_run("orders").id)
    assert failed.status == "failed"
    assert "No space left on device" in failed.error
    assert "hold this run (its rows and ledger row): duckdb; that do not: parquet" in failed.error
    assert failed.pending_outcome is None and failed.state_after == {}
    assert current_state("orders") == {}
    with session_scope() as session:
        assert session.query(ActiveRun).count() == 0


def test_a_load_that_raises_after_its_commit_went_through_counts_as_committed(tributary, monkeypatch):
    _feed()
    load = DuckDBDestination.load

    def lost_acknowledgement(self, request):
        load(self, request)
        raise ConnectionError("server closed the connection unexpectedly")

    monkeypatch.setattr(DuckDBDestination, "load", lost_acknowledgement)
    run = execute_run(create_run("orders").id)
    assert run.status == "succeeded", run.error
    assert run.records_loaded == 5 and current_state("orders") == {"next": 5}
    assert warehouse_rows(tributary, "SELECT count(*) FROM orders") == [(5,)]
    assert "every destination's ledger holds the run" in read_log(run.id)[0]


def test_nothing_in_the_error_path_raises_when_the_store_cannot_record_the_failure(tributary, monkeypatch):
    from core import execution

    create_feed(FeedSpec(name="orders", script=SCRIPT + "raise ValueError('upstream broke')\n"))

    def store_gone(*args, **kwargs):
        raise OSError("disk I/O error")

    monkeypatch.setattr(execution, "_fail", store_gone)
    run = execute_run(create_run("orders").id)  # does not raise
    assert run.status == "running"  # left for recovery once this process has gone
    assert "the store could not record this run's end (failed): disk I/O error" in read_log(run.id)[0]


def _pending_run(destinations: list[str], spool: list[Path]) -> Run:
    run = create_run("orders", announce=False)
    with session_scope() as session:
        row = session.get(Run, run.id)
        row.status, row.worker = "loading", DEAD
        row.pending_outcome = pending_outcome({"next": 5}, 5, destinations, "orders", spool, "incremental", [], 0.0)
        session.add(row)
    return run


class _Ledger:
    """Destinations as recovery sees them: which hold the run, which cannot be asked."""

    def __init__(self, holds: dict[str, bool | Exception]):
        self.holds = holds

    def __call__(self, name: str):
        ledger = self

        class Fake:
            def has_run(self, table, run_id):
                answer = ledger.holds[name]
                if isinstance(answer, Exception):
                    raise answer
                return answer

            def describe_target(self, table):
                return f"{name} {table}"

            def load(self, request):
                raise AssertionError("nothing is loaded here")

        return Fake()


def test_a_pending_run_whose_destination_cannot_be_asked_is_left_for_the_next_recovery(tributary):
    _feed()
    run = _pending_run(["duckdb"], [])
    assert recover_interrupted_runs(_Ledger({"duckdb": ConnectionError("refused")})) == []
    left = get_run(run.id)
    assert left.status == "loading" and left.worker == DEAD and left.pending_outcome is not None
    assert recover_interrupted_runs(_Ledger({"duckdb": True})) == [run.id]
    done = get_run(run.id)
    assert done.status == "succeeded" and done.records_loaded == 5 and done.pending_outcome is None
    assert current_state("orders") == {"next": 5}
    assert done.destination_results["duckdb"]["location"] == "duckdb orders"


def test_a_pending_run_held_by_some_destinations_whose_spool_is_gone_fails_naming_them(tributary):
    _feed(("duckdb", "parquet"))
    run = _pending_run(["duckdb", "parquet"], [tributary / "work" / "gone" / "part-00000.jsonl"])
    assert recover_interrupted_runs(_Ledger({"duckdb": True, "parquet": False})) == [run.id]
    failed = get_run(run.id)
    assert failed.status == "failed" and failed.pending_outcome is None
    assert "the run's spool is gone (part-00000.jsonl), so parquet cannot be loaded" in failed.error
    assert "hold this run (its rows and ledger row): duckdb; that do not: parquet" in failed.error
    assert current_state("orders") == {}


def test_a_pending_run_no_destination_holds_failed_cleanly(tributary):
    _feed()
    run = _pending_run(["duckdb"], [])
    assert recover_interrupted_runs(_Ledger({"duckdb": False})) == [run.id]
    failed = get_run(run.id)
    assert failed.status == "failed" and "before any destination committed" in failed.error
    assert current_state("orders") == {}


def test_a_corrupt_store_is_one_line_naming_the_file_and_what_to_do(tributary):
    store = tributary / "tributary.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(b"this is not a database" * 200)
    with pytest.raises(TributaryError, match="restore it from a backup"):
        bootstrap.build().start()
    done = subprocess.run([sys.executable, "-m", "core.cli", "runs"], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: the store {store} cannot be read (file is not a database)")


def test_the_app_settles_runs_of_processes_that_die_while_it_runs(tributary):
    _feed()
    services = bootstrap.build(background=True)
    run = _pending_run(["duckdb"], [])  # left by a CLI run killed while the app was up
    assert services.recovery_loop.run_once() == [run.id]
    assert get_run(run.id).status == "failed"


def test_a_store_that_cannot_record_phase_two_at_first_is_tried_again(tributary, monkeypatch):
    from core import execution

    _feed()
    complete, failures = execution.complete_run, []

    def busy_once(*args):
        if not failures:
            failures.append(1)
            raise OSError("database is locked")
        complete(*args)

    monkeypatch.setattr(execution, "complete_run", busy_once)
    run = execute_run(create_run("orders").id)
    assert run.status == "succeeded" and run.records_loaded == 5
    assert "the store could not record the run's commit (database is locked); trying again" in read_log(run.id)[0]


def test_a_run_the_store_cannot_record_as_committed_stays_pending_never_failed(tributary, monkeypatch):
    from core import execution

    _feed()
    monkeypatch.setattr(execution, "STORE_RETRY_WAITS_S", ())
    with monkeypatch.context() as patch:
        patch.setattr(execution, "complete_run", lambda *args: (_ for _ in ()).throw(OSError("disk I/O error")))
        run = execute_run(create_run("orders").id)
    assert run.status == "loading" and run.pending_outcome is not None  # the truth: its rows are loaded
    assert "every destination holds this run, but the store could not record it" in read_log(run.id)[0]
    with session_scope() as session:  # the process that ran it ends
        row = session.get(Run, run.id)
        row.worker = DEAD
        session.add(row)
    assert recover_interrupted_runs() == [run.id]
    done = get_run(run.id)
    assert done.status == "succeeded" and done.records_loaded == 5
    assert current_state("orders") == {"next": 5}
    assert execute_run(create_run("orders").id).status == "succeeded"
    assert warehouse_rows(tributary, "SELECT count(*), count(DISTINCT id) FROM orders") == [(10, 10)]


def test_a_run_settled_by_another_process_while_it_ran_is_not_loaded_here(tributary):
    """The fence: recovery elsewhere judged this process dead (a stale heartbeat) and failed the
    run, which its retry will load; the script ending here afterwards loads nothing."""
    import threading

    from sqlmodel import update

    from common.settings import get_settings
    from core.bootstrap import execute_run
    from core.feeds import FeedSpec, create_feed
    from core.runs import create_run, get_run
    from storage.db import session_scope
    from storage.models import Run
    from tests.helpers import table_exists, wait_until

    script = ("import os, time\nfrom lib import outputStream\n"
              "outputStream.write({'id': 1})\n"
              "while not os.path.exists('release-me'):\n    time.sleep(0.05)\n")
    create_feed(FeedSpec(name="fenced", script=script))
    run = create_run("fenced")
    worker = threading.Thread(target=execute_run, args=(run.id,))
    worker.start()
    try:
        wait_until(lambda: get_run(run.id).status == "running", 30, "the run did not start")
        with session_scope() as session:  # what recovery in another process does
            session.execute(update(Run).where(Run.id == run.id).values(
                status="failed", worker="elsewhere:1", error="interrupted: its worker stopped answering"))
    finally:
        (get_settings().work_root / run.id / "release-me").touch()
        worker.join(60)
    ended = get_run(run.id)
    assert (ended.status, ended.error) == ("failed", "interrupted: its worker stopped answering")
    assert not table_exists(tributary, "fenced")
