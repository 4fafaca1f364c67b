"""The heartbeat lease: recovery settles a run whose worker is on another host once its
heartbeat is stale (this host's processes are judged by the process table), with the usual
rules and the feed's retries; a fresh heartbeat, or none, keeps the run; and a worker that
lost its lease stops the run's sandbox. No Redis: the rows are what another host would leave."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from core import bootstrap
from core.feeds import FeedSpec, create_feed
from core.runs import create_run, get_run, list_runs, pending_outcome
from core.services import recovery
from storage.db import session_scope
from storage.models import Run, utcnow
from tests.helpers import wait_until

ELSEWHERE = "worker-host-b:4242:123456"  # a worker id of another host


def _left_by(run_id: str, worker: str, heartbeat_age_s: float | None, **values) -> None:
    with session_scope() as session:
        run = session.get(Run, run_id)
        run.status, run.worker, run.started_at = "running", worker, utcnow() - timedelta(minutes=5)
        run.heartbeat_at = None if heartbeat_age_s is None else utcnow() - timedelta(seconds=heartbeat_age_s)
        for key, value in values.items():
            setattr(run, key, value)
        session.add(run)


@pytest.fixture
def feed(any_store, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HEARTBEAT_STALE_S", "60")
    bootstrap.build()  # retries listen to RunFinished
    create_feed(FeedSpec(name="remote", script="from lib import outputStream\n", retries=1, retry_backoff_s=1))
    return "remote"


def test_a_run_of_another_host_with_a_stale_heartbeat_is_failed_and_retried(feed):
    run = create_run(feed, announce=False)
    _left_by(run.id, ELSEWHERE, heartbeat_age_s=120)
    assert recovery.recover_interrupted_runs() == [run.id]
    settled = get_run(run.id)
    assert (settled.status, settled.error) == ("failed", recovery.INTERRUPTED)
    retry = [r for r in list_runs(feed) if r.attempt == 2]
    assert [(r.status, r.parent_run_id) for r in retry] == [("queued", run.id)]


@pytest.mark.parametrize("age_s", [5, None], ids=["fresh", "none recorded"])
def test_a_fresh_heartbeat_or_none_keeps_the_run_of_another_host(feed, age_s):
    run = create_run(feed, announce=False)
    _left_by(run.id, ELSEWHERE, heartbeat_age_s=age_s)
    assert recovery.recover_interrupted_runs() == []
    assert get_run(run.id).status == "running"


def test_a_run_of_this_host_is_judged_by_its_process_not_its_heartbeat(feed):
    from common.process import worker_id

    run = create_run(feed, announce=False)
    _left_by(run.id, worker_id(), heartbeat_age_s=600)  # this very process: alive
    assert recovery.recover_interrupted_runs() == []
    assert get_run(run.id).status == "running"


def test_a_pending_run_of_another_host_is_reconciled_from_the_ledgers(feed):
    run = create_run(feed, announce=False)
    pending = pending_outcome({"next": 1}, 3, ["duckdb"], feed, [], "incremental", [], 0.0)
    _left_by(run.id, ELSEWHERE, heartbeat_age_s=120, status="loading", pending_outcome=pending)
    assert recovery.recover_interrupted_runs() == [run.id]
    settled = get_run(run.id)
    assert settled.status == "failed" and "before any destination committed" in settled.error
    assert settled.pending_outcome is None


def test_a_heartbeat_renewed_after_the_scan_keeps_the_run(feed):
    run = create_run(feed, announce=False)
    _left_by(run.id, ELSEWHERE, heartbeat_age_s=120)
    lease = recovery._Lease(ELSEWHERE, get_run(run.id).heartbeat_at, utcnow())
    _left_by(run.id, ELSEWHERE, heartbeat_age_s=0)  # the worker was only slow: it beat again
    assert recovery._fail_interrupted(run.id, "running", lease) is False
    assert get_run(run.id).status == "running"


def test_a_worker_that_lost_its_lease_stops_the_run(tributary, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HEARTBEAT_S", "0.2")
    create_feed(FeedSpec(name="slow", script="import time\ntime.sleep(120)\n"))
    services = bootstrap.build()
    run = create_run("slow", announce=False)
    executing = threading.Thread(target=services.execute_run, args=(run.id,), daemon=True)
    executing.start()
    wait_until(lambda: get_run(run.id).status == "running", 30, "the run did not start")
    claimed = get_run(run.id).heartbeat_at
    wait_until(lambda: get_run(run.id).heartbeat_at > claimed, 10, "the heartbeat was not renewed")
    with session_scope() as session:  # what recovery on another host does with a stale lease
        taken = session.get(Run, run.id)
        taken.worker = ELSEWHERE
        session.add(taken)
    started = time.monotonic()
    executing.join(timeout=15)
    assert not executing.is_alive(), "the run went on after its lease was lost"
    assert time.monotonic() - started < 10
    assert get_run(run.id).status == "cancelled"  # its sandbox was killed: nothing was loaded
