"""Runs on many workers: the celery executor sends queued runs through a real Redis to two
real worker processes (`python -m core.worker`, each with its own data dir and working
directory), sharing a PostgreSQL store and a PostgreSQL warehouse.

Each feed script calls the test's hit counter as it starts, so a script that executed twice
would be counted twice. A run's log is written in the data dir of the worker that executed it
(streaming it into the store is a later step), so these tests read what happened from the
store, the warehouse, the counter and the workers' own logs.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from core import bootstrap, celery_executor
from core.feeds import FeedSpec, create_feed
from core.runs import FINAL_STATUSES, cancel_run, create_run, get_run, list_runs
from core.services import recovery
from tests.helpers import wait_until

FEEDS = [f"feed{i}" for i in range(10)]
RECORDS = 3


def _script(counter_url: str, name: str, seconds: float) -> str:
    return f"""
import time, urllib.request
from lib import outputStream, metadata
urllib.request.urlopen("{counter_url}/{name}", timeout=10).read()
time.sleep({seconds})
start = metadata.get("next", 0)
for i in range(start, start + {RECORDS}):
    outputStream.write({{"id": i, "feed": "{name}"}})
metadata.save({{"next": start + {RECORDS}}})
"""


def _feed(counter, name: str, seconds: float = 0.5, **options) -> None:
    create_feed(FeedSpec(name=name, script=_script(counter.url, name, seconds), destinations=["postgres"],
                         **options))


def _ended(run_ids: list[str]) -> list:
    runs = [get_run(run_id) for run_id in run_ids]
    return runs if all(run.status in FINAL_STATUSES for run in runs) else []


def _rows(url: str, table: str) -> tuple:
    with psycopg.connect(url) as con:
        return con.execute(f'SELECT count(*), count(DISTINCT id), count(DISTINCT _tributary_run_id) FROM "{table}"'
                           ).fetchone()


def test_twenty_runs_of_ten_feeds_execute_once_each_spread_over_both_workers(cluster, hit_counter):
    for name in FEEDS:
        _feed(hit_counter, name)
    app = bootstrap.build(background=True).start()  # this process as the app: the dispatcher sends
    try:
        run_ids = []
        for _round in (1, 2):  # a feed has one active run at a time: its second run once the first ended
            started = [app.start_run(name).id for name in FEEDS]
            wait_until(lambda: _ended(started), 180,
                       lambda: f"runs left: {[(r, get_run(r).status) for r in started]}\n{cluster.logs()}")
            run_ids += started
    finally:
        app.stop()
    runs = [get_run(run_id) for run_id in run_ids]
    assert [(run.status, run.error) for run in runs] == [("succeeded", None)] * 20, cluster.logs()
    assert dict(hit_counter.hits) == {name: 2 for name in FEEDS}  # each run's script executed once
    workers = {cluster.worker_of(run.worker).pid for run in runs if cluster.worker_of(run.worker)}
    assert workers == {w.pid for w in cluster.workers}, [run.worker for run in runs]
    assert all(run.heartbeat_at is not None and run.records_loaded == RECORDS for run in runs)
    for run in runs:  # each run's log is in the data dir of the worker that executed it
        log = Path(run.log_path)
        assert log.parent == cluster.worker_of(run.worker).data_dir / "logs", run.log_path
        assert "run succeeded" in log.read_text()
    for name in FEEDS:
        assert _rows(cluster.warehouse_url, name) == (2 * RECORDS, 2 * RECORDS, 2)
        assert [run.state_after for run in sorted(list_runs(name), key=lambda r: r.created_at)] == [
            {"next": RECORDS}, {"next": 2 * RECORDS}]


def test_a_task_delivered_twice_executes_its_run_once(cluster, hit_counter):
    _feed(hit_counter, "twice", seconds=1)
    run = create_run("twice", announce=False)
    celery_executor.send(run.id)
    celery_executor.send(run.id)  # the same task again: a redelivery
    wait_until(lambda: _ended([run.id]), 60, lambda: cluster.logs())
    assert (get_run(run.id).status, get_run(run.id).error) == ("succeeded", None)
    assert hit_counter.hits["twice"] == 1
    assert _rows(cluster.warehouse_url, "twice") == (RECORDS, RECORDS, 1)
    wait_until(lambda: run.id in cluster.logs() and "nothing to do" in cluster.logs(), 30,
               lambda: f"no worker said the second delivery did nothing:\n{cluster.logs()}")
    said = cluster.logs().count(f"run {run.id} ")
    celery_executor.send(run.id)  # and once more, after the run ended
    wait_until(lambda: cluster.logs().count(f"run {run.id} ") > said, 30, lambda: cluster.logs())
    assert "it is succeeded" in cluster.logs()
    assert hit_counter.hits["twice"] == 1
    assert _rows(cluster.warehouse_url, "twice") == (RECORDS, RECORDS, 1)


def test_cancel_reaches_the_remote_worker(cluster, hit_counter):
    _feed(hit_counter, "long", seconds=300)
    run = create_run("long", announce=False)
    celery_executor.send(run.id)
    wait_until(lambda: get_run(run.id).status == "running" and hit_counter.hits["long"] == 1, 60,
               lambda: f"{get_run(run.id).status}\n{cluster.logs()}")
    worker = cluster.worker_of(get_run(run.id).worker)
    assert worker is not None  # a worker process executes it, not this one
    beat = get_run(run.id).heartbeat_at
    wait_until(lambda: get_run(run.id).heartbeat_at > beat, 10, "the running run's heartbeat was not renewed")
    asked = time.monotonic()
    cancel_run(run.id)
    ended = wait_until(lambda: (r := get_run(run.id)).status in FINAL_STATUSES and r, 10,
                       lambda: f"{get_run(run.id).status}\n{worker.log()[-4000:]}")
    took = time.monotonic() - asked
    assert ended.status == "cancelled", (ended.status, ended.error)
    assert took < 4, f"the cancel took {took:.1f} s"
    assert _rows_or_none(cluster.warehouse_url, "long") is None  # nothing was loaded


def _ended_retry(feed: str):
    return next((r for r in list_runs(feed) if r.attempt == 2 and r.status in FINAL_STATUSES), None)


def _rows_or_none(url: str, table: str):
    try:
        return _rows(url, table)
    except psycopg.errors.UndefinedTable:
        return None


FIRST_RUN_HANGS = """
import time, urllib.request
from lib import outputStream
if urllib.request.urlopen("{url}/victim", timeout=10).read() == b"1":
    time.sleep(300)  # the first attempt: its worker's machine dies meanwhile
for i in range({records}):
    outputStream.write({{"id": i}})
"""


@pytest.mark.parametrize("cluster_hosts", [("worker-b",)])
def test_a_run_whose_worker_host_died_is_settled_by_its_stale_heartbeat_and_retried(cluster, hit_counter,
                                                                                     monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HEARTBEAT_STALE_S", "3")
    create_feed(FeedSpec(name="victim", script=FIRST_RUN_HANGS.format(url=hit_counter.url, records=RECORDS),
                         destinations=["postgres"], retries=1, retry_backoff_s=1))
    remote = cluster.workers[0]
    app = bootstrap.build(background=True).start()
    try:
        first = app.start_run("victim")
        wait_until(lambda: get_run(first.id).status == "running" and hit_counter.hits["victim"] == 1, 60,
                   lambda: f"{get_run(first.id).status}\n{cluster.logs()}")
        assert get_run(first.id).worker.startswith("worker-b:")  # another host's worker id
        os.killpg(remote.pid, signal.SIGKILL)  # the machine dies: worker and sandbox at once
        remote.process.wait()
        # Its process cannot be seen from this host: only its heartbeat, stale after 3 s, tells.
        assert recovery.recover_interrupted_runs() == []
        wait_until(lambda: first.id in recovery.recover_interrupted_runs() or get_run(first.id).status == "failed",
                   30, lambda: f"not settled: {get_run(first.id)}")
        assert (get_run(first.id).status, get_run(first.id).error) == ("failed", recovery.INTERRUPTED)
        survivor = cluster.start_worker()  # another worker takes the retry
        retry = wait_until(lambda: _ended_retry("victim"), 60, lambda: f"{list_runs('victim')}\n{cluster.logs()}")
    finally:
        app.stop()
    assert (retry.status, retry.error, retry.parent_run_id) == ("succeeded", None, first.id)
    assert cluster.worker_of(retry.worker) is survivor
    assert hit_counter.hits["victim"] == 2
    assert _rows(cluster.warehouse_url, "victim") == (RECORDS, RECORDS, 1)
