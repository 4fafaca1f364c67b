"""The workers registry on the SQLite and PostgreSQL stores: a worker's presence shows its
host, queues and load (its runs running), ages out of the list when not renewed, is gone once
the worker stops or its process died; a run's worker reads as host and pid."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlmodel import update

from common.clock import utcnow
from common.process import worker_id
from core import bootstrap
from core.feeds import FeedSpec, create_feed
from core.runs import create_run
from core.workers import Presence, seen_workers, worker_fields, worker_label
from storage.db import session_scope
from storage.models import Run, WorkerPresence


def _mark_running(run_id: str, worker: str) -> None:
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status="running", worker=worker))


def test_a_worker_shows_with_its_queues_and_load_and_leaves_when_it_stops(any_store):
    bootstrap.build().start()
    presence = Presence("tributary-1@box", ["tributary.runs", "big"], 3, interval_s=60).start()
    try:
        [seen] = seen_workers()
        assert (seen.name, seen.host, seen.pid, seen.queues, seen.load) == (
            "tributary-1@box", socket.gethostname(), os.getpid(), ["tributary.runs", "big"], "0 / 3")
        create_feed(FeedSpec(name="orders", script="print(1)"))
        _mark_running(create_run("orders", announce=False).id, worker_id())
        presence.renew()
        assert [w.load for w in seen_workers()] == ["1 / 3"]
    finally:
        presence.stop()
    assert seen_workers() == []


def test_a_worker_not_renewed_for_a_minute_or_dead_is_not_listed(any_store):
    bootstrap.build().start()
    presence = Presence("tributary-1@box", ["tributary.runs"], 1, interval_s=60).start()
    with session_scope() as session:
        session.execute(update(WorkerPresence).values(last_seen_at=utcnow() - timedelta(seconds=61)))
        session.add(WorkerPresence(id=f"{socket.gethostname()}:999999:1", name="dead", host=socket.gethostname(),
                                   pid=999999, queues=["tributary.runs"]))
    assert seen_workers() == []
    presence.renew()
    assert [w.name for w in seen_workers()] == ["tributary-1@box"]
    presence.stop()


def test_a_runs_worker_reads_as_host_and_pid():
    assert worker_label("box-a:4242:987654") == "box-a (pid 4242)"
    assert worker_fields("box-a:4242:987654") == {"host": "box-a", "pid": 4242}
    assert worker_label(None) == "" and worker_fields(None) is None
