"""The concurrency rules hold across two real workers (each running 2 runs at a time, through a
real Redis, sharing a PostgreSQL store): a connection's runs at once, a worker's own
concurrency, and one active run per feed.

Concurrency is measured, not inferred: each feed script calls the test's gate (an HTTP server)
as it starts and as it ends, and waits in between until the test lets its group go. The gate
counts the scripts in flight per group and the most it saw at once.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

import pytest

from app_pages.view_models.queue_reasons import queue_reasons
from common.errors import Conflict
from core import bootstrap
from core.connections import ConnectionInput, create_connection
from core.feeds import FeedSpec, create_feed
from core.runs import FINAL_STATUSES, get_run, list_runs
from tests.distributed.conftest import WORKER_CONCURRENCY, TextServer
from tests.helpers import wait_until


class Gate(TextServer):
    """GET /enter/<group>/<name>, /hold/<group> ("hold" until released, then "go") and
    /leave/<group>/<name>: the scripts in flight per group, and the most at once."""

    def __init__(self):
        self.in_flight: Counter = Counter()
        self.most: Counter = Counter()
        self.entered: dict[str, set] = defaultdict(set)
        self.released: set[str] = set()
        self.lock = threading.Lock()
        super().__init__(lambda path: self.answer(*path.split("/")))

    def answer(self, action: str, group: str, name: str = "") -> str:
        with self.lock:
            if action == "enter":
                self.in_flight[group] += 1
                self.most[group] = max(self.most[group], self.in_flight[group])
                self.entered[group].add(name)
            elif action == "leave":
                self.in_flight[group] -= 1
            return "go" if group in self.released else "hold"

    def release(self, group: str) -> None:
        with self.lock:
            self.released.add(group)


@pytest.fixture
def gate():
    server = Gate()
    yield server
    server.close()


def _script(gate: Gate, group: str, name: str) -> str:
    return f"""
import time, urllib.request
from lib import outputStream

def call(path):
    return urllib.request.urlopen("{gate.url}" + path, timeout=10).read()

call("/enter/{group}/{name}")
try:
    while call("/hold/{group}") == b"hold":
        time.sleep(0.05)
finally:
    call("/leave/{group}/{name}")
outputStream.write({{"feed": "{name}"}})
"""


def _feeds(gate: Gate, connection: str, names: list[str]) -> None:
    for name in names:
        create_feed(FeedSpec(name=name, script=_script(gate, connection, name), connection=connection,
                             destinations=["postgres"]))


def _ended(run_ids: list[str]) -> list:
    runs = [get_run(run_id) for run_id in run_ids]
    return runs if all(run.status in FINAL_STATUSES for run in runs) else []


def _most_at_once_per_worker(runs) -> dict[str, int]:
    """From the store: the most runs each worker executed at once (claimed to ended)."""
    edges = defaultdict(list)
    for run in runs:
        edges[run.worker] += [(run.started_at, 1), (run.finished_at, -1)]
    most = {}
    for worker, points in edges.items():
        now = 0
        most[worker] = 0
        for _, step in sorted(points, key=lambda point: (point[0], point[1])):  # an end before a start
            now += step
            most[worker] = max(most[worker], now)
    return most


@pytest.fixture
def app(cluster):
    services = bootstrap.build(background=True).start()  # this process as the app: the dispatcher sends
    yield services
    services.stop()


def _all_succeed(cluster, run_ids: list[str]) -> list:
    runs = wait_until(lambda: _ended(run_ids), 180,
                      lambda: f"runs left: {[(r, get_run(r).status) for r in run_ids]}\n{cluster.logs()}")
    assert [(run.status, run.error) for run in runs] == [("succeeded", None)] * len(run_ids), cluster.logs()
    return runs


def test_a_connections_cap_holds_across_both_workers_while_they_have_free_slots(cluster, app, gate):
    create_connection("limited", "none", ConnectionInput(limits={"max_concurrent_runs": 2}))
    create_connection("open", "none")
    limited = [f"limited{i}" for i in range(6)]
    _feeds(gate, "limited", limited)
    _feeds(gate, "open", ["open0"])
    run_ids = [app.start_run(name).id for name in limited] + [app.start_run("open0").id]

    # The open connection's run, queued after all six, starts while two of the capped runs
    # hold: the capped runs waiting did not hold it up, and one of the four slots stays free.
    wait_until(lambda: gate.in_flight["limited"] == 2 and gate.in_flight["open"] == 1, 120,
               lambda: f"in flight {dict(gate.in_flight)}\n{cluster.logs()}")
    waiting = [get_run(run_id) for run_id in run_ids if get_run(run_id).status == "queued"]
    assert len(waiting) == 4
    assert set(queue_reasons(waiting).values()) == {
        "Waiting: connection limited runs at most 2 at once (2 of its runs are running)"}

    gate.release("open")
    gate.release("limited")
    runs = _all_succeed(cluster, run_ids)
    assert gate.most["limited"] == 2 and gate.entered["limited"] == set(limited)
    assert len({run.worker for run in runs}) == 2  # both workers took runs
    assert max(_most_at_once_per_worker(runs).values()) <= WORKER_CONCURRENCY


def test_an_uncapped_connections_runs_spread_to_every_slot_of_both_workers_and_no_further(cluster, app, gate):
    create_connection("open", "none")
    names = [f"open{i}" for i in range(8)]
    _feeds(gate, "open", names)
    run_ids = [app.start_run(name).id for name in names]
    slots = WORKER_CONCURRENCY * len(cluster.workers)

    wait_until(lambda: gate.in_flight["open"] == slots, 120,
               lambda: f"in flight {dict(gate.in_flight)}\n{cluster.logs()}")
    executing = [get_run(run_id) for run_id in run_ids if get_run(run_id).status == "running"]
    assert sorted(Counter(run.worker for run in executing).values()) == [WORKER_CONCURRENCY] * len(cluster.workers)
    assert sum(get_run(run_id).status == "queued" for run_id in run_ids) == len(names) - slots

    gate.release("open")
    runs = _all_succeed(cluster, run_ids)
    assert gate.most["open"] == slots
    assert max(_most_at_once_per_worker(runs).values()) == WORKER_CONCURRENCY


def test_a_feed_started_twice_has_one_active_run(cluster, app, gate):
    create_connection("open", "none")
    _feeds(gate, "open", ["solo"])
    first = app.start_run("solo")
    wait_until(lambda: "solo" in gate.entered["open"], 120, cluster.logs)
    with pytest.raises(Conflict, match="already has an active run"):
        app.start_run("solo")
    gate.release("open")
    _all_succeed(cluster, [first.id])
    assert [run.id for run in list_runs("solo")] == [first.id]
    assert gate.most["open"] == 1
