"""The workers registry with two real worker processes (`python -m core.worker`): both are
seen, with their host, queues and load (runs executing / runs at a time); the load follows a
run on the worker executing it; the app's own worker is listed while the app runs; a worker
stopped leaves the list."""

from __future__ import annotations

import os
import signal
import socket

from core import bootstrap
from core.feeds import FeedSpec, create_feed
from core.queues import APP_HOST_QUEUE, DEFAULT_QUEUE
from core.runs import FINAL_STATUSES, cancel_run, get_run
from core.workers import seen_workers
from tests.distributed.conftest import WORKER_CONCURRENCY
from tests.helpers import wait_until

SLOW = "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)\n"


def _loads() -> dict[int, int]:
    """Each worker process seen, by pid: the runs it executes (this process: the app's own)."""
    return {w.pid: w.running for w in seen_workers() if w.pid != os.getpid()}


def test_two_workers_are_seen_with_their_queues_and_load_and_a_stopped_one_leaves(cluster):
    pids = {w.pid for w in cluster.workers}
    seen = wait_until(lambda: [w for w in seen_workers() if w.pid in pids] if len(seen_workers()) >= 2 else [],
                      30, lambda: f"both workers were not seen: {seen_workers()}\n{cluster.logs()}")
    assert {w.pid for w in seen} == pids
    assert all(w.host == socket.gethostname() and w.queues == [DEFAULT_QUEUE]
               and w.load == f"0 / {WORKER_CONCURRENCY}" for w in seen)

    create_feed(FeedSpec(name="slow", script=SLOW, destinations=["postgres"]))
    app = bootstrap.build(background=True).start()  # this process as the app: the dispatcher sends
    try:
        [own] = [w for w in seen_workers() if w.pid == os.getpid()]
        assert own.queues == [APP_HOST_QUEUE] and own.name.startswith("tributary-app-")
        run = app.start_run("slow", trigger="manual", wait=False)
        executing = wait_until(lambda: get_run(run.id).worker if get_run(run.id).status == "running" else None,
                               60, lambda: f"no worker took the run:\n{cluster.logs()}")
        owner = cluster.worker_of(executing)
        other = next(w for w in cluster.workers if w is not owner)
        wait_until(lambda: _loads() == {owner.pid: 1, other.pid: 0}, 30,
                   lambda: f"the load did not show the run: {seen_workers()}")
        cancel_run(run.id)
        wait_until(lambda: get_run(run.id).status in FINAL_STATUSES, 30, "the run was not cancelled")
        wait_until(lambda: _loads() == {owner.pid: 0, other.pid: 0}, 30,
                   lambda: f"the load did not drop once the run ended: {seen_workers()}")
    finally:
        app.stop()
    assert os.getpid() not in {w.pid for w in seen_workers()}

    os.kill(other.pid, signal.SIGTERM)
    other.process.wait(timeout=30)
    assert other.pid not in _loads()
    assert [w.pid for w in seen_workers()] == [owner.pid]
