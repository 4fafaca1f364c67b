"""metadata.checkpoint(state): a run commits its records so far and a state while it runs, and a
run that dies or fails after a checkpoint resumes from it, every record loaded once.

The kill tests run a run in a child process with the fault hook set (common/faults.py), with the
crash-point matrix's harness (test_crash_matrix.py); then recovery and the next run execute here.
"""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest

from common.settings import get_settings
from core import bootstrap
from core.execution import RunExecutor
from core.feeds import FeedSpec, create_feed
from core.preview import PreviewRequest, preview_script
from core.runs import create_run, get_run, list_runs, read_log, run_view
from core.state import current_state, state_history
from storage.db import session_scope
from storage.destinations.duckdb import DuckDBDestination
from storage.lookups import feed_by_name
from storage.models import ActiveRun, Run
from tests.destinations.harness import TARGETS, make_target
from tests.exactly_once.test_crash_matrix import _kill_a_run_at
from tests.helpers import warehouse_rows
from tests.ui.conftest import new_app, texts

FEED = "orders"


def script(total: int, every: int, then: str = "") -> str:
    """Writes ids from the state's "next" up to total, checkpointing every `every` records;
    `then` runs after each checkpoint (with `n`, the records written so far, and `start`)."""
    return f"""
import os, signal
from lib import outputStream, metadata
start = metadata.get("next", 0)
for i in range(start, {total}):
    outputStream.write({{"id": i, "name": "order %d" % i}})
    n = i + 1
    if n % {every} == 0 and n < {total}:
        metadata.checkpoint({{"next": n}})
        {then or "pass"}
metadata.save({{"next": {total}}})
"""


def _feed(text: str, destinations=("duckdb",), load_type: str = "incremental", retries: int = 0) -> None:
    create_feed(FeedSpec(name=FEED, script=text, destinations=list(destinations)[-1:], load_type=load_type,
                         retries=retries, retry_backoff_s=1))
    if len(destinations) > 1:  # no warehouse offers both: set on the feed as it is stored
        with session_scope() as session:
            feed = feed_by_name(session, FEED)
            feed.destinations = list(destinations)
            session.add(feed)


def _duckdb_rows(data_dir: Path) -> tuple:
    return warehouse_rows(data_dir, f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {FEED}")[0]


def _rows(name: str, url: str | None, data_dir: Path) -> tuple:
    if name == "duckdb":
        return _duckdb_rows(data_dir)
    with psycopg.connect(url) as con:
        return con.execute(f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {FEED}").fetchone()


def _no_leftovers(run_id: str) -> None:
    with session_scope() as session:
        assert session.query(ActiveRun).count() == 0
    root = get_settings().work_root
    assert not root.exists() or not any(p.name.startswith(run_id) for p in root.iterdir())


# ---------------------------------------------------------------- in one process


def test_a_checkpointed_run_commits_at_each_checkpoint_and_lists_them(tributary):
    _feed(script(30, 10))
    run = bootstrap.start_run(FEED, wait=True)
    assert run.status == "succeeded", run.error
    assert (run.records_written, run.records_loaded) == (30, 30)
    assert run.destination_results["duckdb"]["rows"] == 30
    view = run_view(run)
    assert [(c["records"], c["state"]) for c in view["checkpoints"]] == [(10, {"next": 10}), (20, {"next": 20})]
    assert all(c["at"] for c in view["checkpoints"])
    assert _duckdb_rows(tributary) == (30, 30, 0, 29)
    # one ledger id per commit: the checkpoints' and the run's
    ids = warehouse_rows(tributary, f"SELECT _tributary_run_id, count(*) FROM {FEED} GROUP BY 1 ORDER BY 1")
    assert ids == [(run.id, 10), (f"{run.id}-c1", 10), (f"{run.id}-c2", 10)]
    history = state_history(FEED)
    assert [(h.reason, h.state) for h in history] == [
        ("checkpoint", {"next": 10}), ("checkpoint", {"next": 20}), ("run", {"next": 30})]
    assert "checkpoint 2 committed: 20 records written so far" in read_log(run.id)[0]
    _no_leftovers(run.id)
    # the run's page lists them
    page = new_app("runs", run=run.id)
    assert "Checkpoints" in texts(page)
    [listed] = [frame.value for frame in page.dataframe if "State" in frame.value.columns]
    assert list(listed["Records"]) == [10, 20] and list(listed["State"]) == ['{"next": 10}', '{"next": 20}']


def test_a_run_failing_after_a_checkpoint_resumes_from_it(tributary):
    _feed(script(30, 10, then="if n == 20 and start == 0: raise RuntimeError('upstream broke')"))
    failed = bootstrap.start_run(FEED, wait=True)
    assert failed.status == "failed" and "upstream broke" in failed.error
    assert failed.records_loaded == 20 and failed.state_after == {"next": 20}
    assert current_state(FEED) == {"next": 20}
    assert _duckdb_rows(tributary) == (20, 20, 0, 19)
    after = bootstrap.start_run(FEED, wait=True)
    assert after.status == "succeeded", after.error
    assert after.state_before == {"next": 20} and after.records_loaded == 10
    assert _duckdb_rows(tributary) == (30, 30, 0, 29)


def test_a_script_that_never_checkpoints_commits_as_before(tributary):
    _feed(script(30, 1000))
    run = bootstrap.start_run(FEED, wait=True)
    assert run.status == "succeeded" and run.records_loaded == 30
    assert run_view(run)["checkpoints"] == [] and run.checkpoints is None
    assert warehouse_rows(tributary, f"SELECT DISTINCT _tributary_run_id FROM {FEED}") == [(run.id,)]


def test_truncate_and_insert_replaces_the_table_once_at_the_first_checkpoint(tributary):
    _feed(script(30, 10), load_type="truncate_insert")
    assert bootstrap.start_run(FEED, wait=True).status == "succeeded"
    assert _duckdb_rows(tributary) == (30, 30, 0, 29)
    # A run (starting from {} again) that fails after its second checkpoint: the table was
    # replaced at the first, and holds that run's records up to its last checkpoint.
    from core.state import reset_state

    reset_state(FEED, {})
    with session_scope() as session:
        feed = feed_by_name(session, FEED)
        feed.script = script(30, 10, then="if n == 20 and start == 0: raise RuntimeError('upstream broke')")
        session.add(feed)
    failed = bootstrap.start_run(FEED, wait=True)
    assert failed.status == "failed"
    assert _duckdb_rows(tributary) == (20, 20, 0, 19)
    assert len({r[0] for r in warehouse_rows(tributary, f"SELECT _tributary_run_id FROM {FEED}")}) == 2
    # The run resuming from it appends: together they replaced the table once.
    after = bootstrap.start_run(FEED, wait=True)
    assert after.status == "succeeded", after.error
    assert "appends to the table that run began replacing" in read_log(after.id)[0]
    assert _duckdb_rows(tributary) == (30, 30, 0, 29)
    # And the next full run replaces it again (at its first checkpoint).
    reset_state(FEED, {})
    with session_scope() as session:
        feed = feed_by_name(session, FEED)
        feed.script = script(30, 10)
        session.add(feed)
    again = bootstrap.start_run(FEED, wait=True)
    assert again.status == "succeeded"
    assert _duckdb_rows(tributary) == (30, 30, 0, 29)
    assert {r[0] for r in warehouse_rows(tributary, f"SELECT _tributary_run_id FROM {FEED}")} == {
        again.id, f"{again.id}-c1", f"{again.id}-c2"}


def test_upsert_checkpoints_merge_by_key(tributary):
    text = """
from lib import outputStream, metadata
for round in range(3):
    for i in range(10):
        outputStream.write({"id": i, "round": round})
    metadata.checkpoint({"round": round})
"""
    create_feed(FeedSpec(name=FEED, script=text, destinations=["duckdb"], load_type="upsert", primary_key=["id"]))
    run = bootstrap.start_run(FEED, wait=True)
    assert run.status == "succeeded", run.error
    assert warehouse_rows(tributary, f"SELECT count(*), min(round), max(round) FROM {FEED}") == [(10, 2, 2)]
    assert current_state(FEED) == {"round": 2}


def test_a_checkpoint_that_cannot_be_loaded_fails_the_run_and_keeps_the_ones_before(tributary, monkeypatch):
    _feed(script(30, 10))
    load, calls = DuckDBDestination.load, []

    def second_fails(self, request):
        calls.append(request.run_id)
        if len(calls) == 2:
            raise OSError("No space left on device")
        return load(self, request)

    monkeypatch.setattr(DuckDBDestination, "load", second_fails)
    failed = bootstrap.start_run(FEED, wait=True)
    assert failed.status == "failed"
    assert "No space left on device" in failed.error
    assert failed.records_loaded == 10 and current_state(FEED) == {"next": 10}
    assert [c["number"] for c in failed.checkpoints] == [1]
    assert "CheckpointFailed: checkpoint 2 was not committed" in read_log(failed.id)[0]
    assert _duckdb_rows(tributary) == (10, 10, 0, 9)
    _no_leftovers(failed.id)


def test_a_test_run_ignores_checkpoints(tributary):
    result = preview_script(PreviewRequest(script=script(30, 10), run_to_completion=True))
    assert result.ok, result.error
    assert result.count == 30 and result.metadata == {"next": 30}
    assert not (tributary / "warehouse.duckdb").exists()
    preview = preview_script(PreviewRequest(script=script(30, 10).replace("metadata.save", "print")))
    assert preview.ok and preview.metadata is None  # a checkpoint in a test writes nothing


def test_a_marker_the_script_made_a_symlink_fails_the_run(tributary):
    text = """
import os, time
from lib import outputStream, metadata
outputStream.write({"id": 1})
os.makedirs("out/checkpoints", exist_ok=True)
os.symlink("/etc/passwd", "out/checkpoints/0001.json")  # a marker of its own making
while not os.path.exists("out/checkpoints/0001.ack"):
    time.sleep(0.01)
print(open("out/checkpoints/0001.ack").read())
"""
    _feed(text)
    run = bootstrap.start_run(FEED, wait=True)
    assert run.status == "failed"
    assert "not a regular file" in run.error
    assert "error: out/checkpoints/0001.json is not a regular file" in read_log(run.id)[0]
    assert current_state(FEED) == {} and not (tributary / "warehouse.duckdb").exists()


def test_a_checkpoint_after_a_failed_one_is_refused_at_once(tributary, monkeypatch):
    text = """
from lib import outputStream, metadata
from lib._runtime import CheckpointFailed
outputStream.write({"id": 1})
for attempt in range(2):
    try:
        metadata.checkpoint({"next": 1})
    except CheckpointFailed as exc:
        print("refused:", exc)
"""
    create_feed(FeedSpec(name=FEED, script=text, destinations=["duckdb"], timeout_s=60))

    def fails(self, request):
        raise OSError("No space left on device")

    monkeypatch.setattr(DuckDBDestination, "load", fails)
    run = bootstrap.start_run(FEED, wait=True)
    assert run.status == "failed" and "No space left on device" in run.error
    log = read_log(run.id)[0]
    assert log.count("refused: checkpoint") == 2 and "refused: checkpoint 2" in log
    assert (run.finished_at - run.started_at).total_seconds() < 30  # no wait for the timeout


@pytest.mark.parametrize("kind", TARGETS)
def test_checkpoints_work_with_every_destination(kind, tributary, request, tmp_path):
    target = make_target(kind, request, tmp_path)
    made = target.make()
    _feed(script(30, 10, then="if n == 20 and start == 0: raise RuntimeError('upstream broke')"))
    executor = RunExecutor(destinations=lambda name: made)
    failed = executor.execute(create_run(FEED, announce=False).id)
    assert failed.status == "failed" and failed.records_loaded == 20
    assert sorted(r["id"] for r in target.rows(FEED)) == list(range(20))
    after = executor.execute(create_run(FEED, announce=False).id)
    assert after.status == "succeeded", after.error
    assert sorted(r["id"] for r in target.rows(FEED)) == list(range(30))
    with session_scope() as session:
        feed = feed_by_name(session, FEED)
        feed.load_type = "truncate_insert"
        session.add(feed)
    from core.state import reset_state

    reset_state(FEED, {})  # the next run fetches everything again, and replaces the table
    failed = executor.execute(create_run(FEED, announce=False).id)
    assert failed.status == "failed"
    assert sorted(r["id"] for r in target.rows(FEED)) == list(range(20))  # replaced at its first checkpoint
    resumed = executor.execute(create_run(FEED, announce=False).id)
    assert resumed.status == "succeeded", resumed.error
    assert sorted(r["id"] for r in target.rows(FEED)) == list(range(30))


# ---------------------------------------------------------------- killed


BIG, EVERY = 300_000, 50_000


@pytest.mark.parametrize("load_type", ["incremental", "truncate_insert"])
def test_a_run_killed_after_its_fourth_checkpoint_is_resumed_from_it(tributary, load_type):
    """300,000 records, a checkpoint every 50,000; the process running it is killed once the
    store has recorded the fourth: the next run starts from the fourth state, and the table
    ends with 300,000 distinct rows."""
    _feed(script(BIG, EVERY), load_type=load_type, retries=1)
    child = _kill_a_run_at("checkpoint_committed:4")
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    [killed] = list_runs(FEED)
    assert killed.status == "running" and len(killed.checkpoints) == 4
    assert current_state(FEED) == {"next": 4 * EVERY}
    assert _duckdb_rows(tributary) == (4 * EVERY, 4 * EVERY, 0, 4 * EVERY - 1)

    services = bootstrap.build().start()  # recovery, as at start-up
    killed = get_run(killed.id)
    assert killed.status == "failed" and "4 checkpoint(s) stay committed (200000 records)" in killed.error
    assert killed.records_loaded == 4 * EVERY and killed.state_after == {"next": 4 * EVERY}
    with session_scope() as session:
        [retry] = session.query(Run).filter(Run.status == "queued").all()
    after = services.execute_run(retry.id)
    assert after.status == "succeeded", after.error
    assert after.state_before == {"next": 4 * EVERY}
    assert after.records_written == after.records_loaded == BIG - 4 * EVERY
    assert [c["state"] for c in run_view(after)["checkpoints"]] == [{"next": 5 * EVERY}]
    assert _duckdb_rows(tributary) == (BIG, BIG, 0, BIG - 1)
    assert current_state(FEED) == {"next": BIG}
    _no_leftovers(killed.id)


def test_a_script_killed_after_its_fourth_checkpoint_is_resumed_from_it(tributary):
    """The same, with the script's own process killed (the app goes on)."""
    _feed(script(BIG, EVERY, then=f"if n == {4 * EVERY} and start == 0: os.kill(os.getpid(), signal.SIGKILL)"))
    killed = bootstrap.start_run(FEED, wait=True)
    assert killed.status == "failed" and killed.records_loaded == 4 * EVERY
    assert [c["records"] for c in killed.checkpoints] == [EVERY, 2 * EVERY, 3 * EVERY, 4 * EVERY]
    after = bootstrap.start_run(FEED, wait=True)
    assert after.status == "succeeded", after.error
    assert after.state_before == {"next": 4 * EVERY}
    assert _duckdb_rows(tributary) == (BIG, BIG, 0, BIG - 1)


# The crash points around a checkpoint. The script writes 30 records and checkpoints at 10 and
# 20; its commits are checkpoint 1, checkpoint 2 and the final one, each loading every
# destination in turn (the n-th destination load counts them all). point -> (the killed run's
# status after recovery, the state the next run starts from).
ONE = {
    "destination_before_commit:2": ("failed", {"next": 10}),  # inside checkpoint 2's load
    "destination_committed:2": ("failed", {"next": 20}),  # it committed, the store had not recorded it
    "checkpoint_committed:2": ("failed", {"next": 20}),  # the store recorded it, the script not told
    "destination_committed:3": ("succeeded", {"next": 30}),  # the final commit, after the checkpoints
    "store_committed": ("succeeded", {"next": 30}),
}
TWO = {
    "destination_before_commit:3": ("failed", {"next": 10}),  # no destination holds checkpoint 2
    "destination_before_commit:4": ("failed", {"next": 20}),  # one does: recovery loads the other
    "destination_committed:3": ("failed", {"next": 20}),  # likewise, before the second load began
    "destination_committed:4": ("failed", {"next": 20}),  # both hold it: recovery records it
    "checkpoint_committed:2": ("failed", {"next": 20}),
    "destination_committed:5": ("succeeded", {"next": 30}),  # the final commit's first load
}
CASES = ([("duckdb", p, e) for p, e in ONE.items()] + [("duckdb+postgres", p, e) for p, e in TWO.items()])


@pytest.fixture
def destinations(request, tributary, monkeypatch):
    names = request.param.split("+")
    url = None
    if "postgres" in names:
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "postgres")
        monkeypatch.setenv("TRIBUTARY_POSTGRES_URL", url)
    return names, url, tributary


@pytest.mark.parametrize(("destinations", "point", "expected"), CASES, indirect=["destinations"],
                         ids=[f"{d}-{p}" for d, p, _ in CASES])
def test_every_record_is_loaded_once_whatever_dies_around_a_checkpoint(destinations, point, expected):
    names, url, data_dir = destinations
    status, resumes_from = expected
    _feed(script(30, 10), names, retries=1)
    child = _kill_a_run_at(point)
    assert child.returncode == -signal.SIGKILL, f"the fault point {point} was not reached: {child.stdout}{child.stderr}"
    [killed] = list_runs(FEED)

    services = bootstrap.build().start()  # recovery, as at start-up
    killed = services.execute_run(killed.id)  # a settled run is not executed again
    assert killed.status == status, killed.error
    assert killed.pending_outcome is None
    assert killed.state_after == current_state(FEED) == resumes_from
    assert [c["state"] for c in killed.checkpoints] == [{"next": n} for n in (10, 20) if n <= resumes_from["next"]]
    assert killed.records_loaded == resumes_from["next"]
    with session_scope() as session:
        queued = session.query(Run).filter(Run.status == "queued").all()
    if status == "failed":
        assert "interrupted" in killed.error
        [retry] = queued
        after = services.execute_run(retry.id)
    else:
        assert queued == []
        after = services.start_run(FEED, wait=True)
    assert after.status == "succeeded", after.error
    assert after.state_before == resumes_from
    for name in names:
        assert _rows(name, url, data_dir) == (30, 30, 0, 29), name
    assert current_state(FEED) == {"next": 30}
    _no_leftovers(killed.id)


def test_a_truncate_and_insert_killed_inside_its_first_checkpoint_leaves_the_table_as_it_was(tributary):
    from core.state import reset_state

    _feed(script(30, 10), load_type="truncate_insert", retries=1)
    first = bootstrap.start_run(FEED, wait=True)
    assert first.status == "succeeded"
    reset_state(FEED, {})
    child = _kill_a_run_at("destination_before_commit:1")  # the first checkpoint's DELETE and rows, no COMMIT
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert _duckdb_rows(tributary) == (30, 30, 0, 29)
    assert {r[0] for r in warehouse_rows(tributary, f"SELECT _tributary_run_id FROM {FEED}")} == {
        first.id, f"{first.id}-c1", f"{first.id}-c2"}
    services = bootstrap.build().start()
    with session_scope() as session:
        [retry] = session.query(Run).filter(Run.status == "queued").all()
    after = services.execute_run(retry.id)
    assert after.status == "succeeded", after.error
    assert _duckdb_rows(tributary) == (30, 30, 0, 29)
    assert {r[0] for r in warehouse_rows(tributary, f"SELECT _tributary_run_id FROM {FEED}")} == {
        after.id, f"{after.id}-c1", f"{after.id}-c2"}


def test_a_run_cancelled_while_a_checkpoint_commits_keeps_that_checkpoint(tributary, monkeypatch):
    import threading
    import time

    from core.runs import cancel_run

    _feed(script(30, 10))
    load, loading = DuckDBDestination.load, threading.Event()

    def slow(self, request):
        loading.set()
        time.sleep(1.5)  # the cancel lands meanwhile
        return load(self, request)

    monkeypatch.setattr(DuckDBDestination, "load", slow)
    run = create_run(FEED, announce=False)
    threading.Thread(target=lambda: (loading.wait(30), cancel_run(run.id)), daemon=True).start()
    cancelled = bootstrap.execute_run(run.id)
    assert cancelled.status == "cancelled", cancelled.error
    assert [c["number"] for c in cancelled.checkpoints] == [1]
    assert cancelled.pending_outcome is None and current_state(FEED) == {"next": 10}
    assert _duckdb_rows(tributary) == (10, 10, 0, 9)
    _no_leftovers(run.id)


def test_a_checkpoint_the_store_cannot_record_stays_pending_for_recovery(tributary, monkeypatch):
    import socket

    from core import execution
    from core.services.recovery import recover_interrupted_runs

    _feed(script(30, 10))

    record, down = execution.record_checkpoint, [True]

    def store_down(*args, **kwargs):
        if down:
            raise ConnectionError("the store is gone")
        return record(*args, **kwargs)

    monkeypatch.setattr(execution, "STORE_RETRY_WAITS_S", (0.0,))
    monkeypatch.setattr(execution, "record_checkpoint", store_down)
    run = bootstrap.execute_run(create_run(FEED, announce=False).id)
    assert run.status == "running" and run.pending_outcome["checkpoint"] == 1  # every destination holds it
    assert current_state(FEED) == {}
    down.clear()  # the store is back
    with session_scope() as session:  # its process has gone
        left = session.get(Run, run.id)
        left.worker = f"{socket.gethostname()}:999999:1"
        session.add(left)
    assert recover_interrupted_runs() == [run.id]
    run = get_run(run.id)
    assert run.status == "failed" and "after checkpoint 1 was committed" in run.error
    assert current_state(FEED) == {"next": 10} and run.records_loaded == 10
    assert _duckdb_rows(tributary) == (10, 10, 0, 9)
    after = bootstrap.start_run(FEED, wait=True)
    assert after.status == "succeeded" and after.state_before == {"next": 10}
    assert _duckdb_rows(tributary) == (30, 30, 0, 29)
