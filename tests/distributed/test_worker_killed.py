"""A worker killed with SIGKILL in the middle of a large run: the run is settled by the rules of
the exactly-once protocol and, where it must be, retried on the other worker; the warehouse
table holds each of its 200,000 records exactly once.

Two real workers (`python -m core.worker`) share a PostgreSQL store and a PostgreSQL warehouse
with this process, which plays the app (its dispatcher sends the runs, its recovery settles
them). The workers are on this host, so recovery sees a killed worker's process gone at once.
"""

from __future__ import annotations

import os
import signal

import pytest

from common.faults import FAULT_POINT_ENV
from core import bootstrap
from core.feeds import FeedSpec, create_feed
from core.runs import FINAL_STATUSES, get_run, list_runs
from core.services import recovery
from tests.distributed.test_celery_workers import _rows
from tests.helpers import wait_until

RECORDS = 200_000

# The first attempt writes half its records, tells the test, and waits there to be killed.
HALF_THEN_HANG = """
import time, urllib.request
from lib import outputStream
first = urllib.request.urlopen("{url}/big", timeout=10).read() == b"1"
for i in range({records}):
    if first and i == {records} // 2:
        urllib.request.urlopen("{url}/big", timeout=10).read()  # halfway
        time.sleep(600)
    outputStream.write({{"id": i, "payload": "x" * 40}})
"""

ALL_RECORDS = """
from lib import outputStream
for i in range({records}):
    outputStream.write({{"id": i, "payload": "x" * 40}})
"""


def _settled(run_id: str):
    recovery.recover_interrupted_runs()
    run = get_run(run_id)
    return run if run.status in FINAL_STATUSES else None


def _retry_of(feed: str, parent: str):
    return next((r for r in list_runs(feed) if r.parent_run_id == parent and r.status in FINAL_STATUSES), None)


def test_a_worker_killed_mid_run_has_its_run_retried_on_the_other_worker_once(cluster, hit_counter):
    create_feed(FeedSpec(name="big", script=HALF_THEN_HANG.format(url=hit_counter.url, records=RECORDS),
                         destinations=["postgres"], retries=1, retry_backoff_s=1))
    app = bootstrap.build(background=True).start()
    try:
        first = app.start_run("big")
        wait_until(lambda: hit_counter.hits["big"] == 2, 120,
                   lambda: f"the first attempt did not reach halfway: {get_run(first.id)}\n{cluster.logs()}")
        victim = cluster.worker_of(get_run(first.id).worker)
        assert victim is not None, get_run(first.id).worker
        os.killpg(victim.pid, signal.SIGKILL)  # the worker, without a chance to clean up
        victim.process.wait()
        failed = wait_until(lambda: _settled(first.id), 60, lambda: f"not settled: {get_run(first.id)}")
        retry = wait_until(lambda: _retry_of("big", first.id), 180,
                           lambda: f"{list_runs('big')}\n{cluster.logs()}")
    finally:
        app.stop()
    assert (failed.status, failed.error) == ("failed", recovery.INTERRUPTED)
    survivor = next(w for w in cluster.workers if w is not victim)
    assert (retry.status, retry.error, retry.attempt) == ("succeeded", None, 2), cluster.logs()
    assert cluster.worker_of(retry.worker) is survivor
    assert retry.records_loaded == RECORDS
    assert _rows(cluster.warehouse_url, "big") == (RECORDS, RECORDS, 1)  # nothing of the killed attempt


@pytest.mark.parametrize("cluster_hosts", [()])  # no worker but the one this test starts
def test_a_worker_killed_between_the_warehouse_commit_and_the_store_commit_is_not_loaded_twice(
        cluster, monkeypatch):
    monkeypatch.setenv(FAULT_POINT_ENV, "destination_committed")
    victim = cluster.start_worker()
    monkeypatch.delenv(FAULT_POINT_ENV)
    create_feed(FeedSpec(name="big", script=ALL_RECORDS.format(records=RECORDS), destinations=["postgres"],
                         retries=1, retry_backoff_s=1))
    app = bootstrap.build(background=True).start()
    try:
        run = app.start_run("big")
        victim.process.wait(timeout=180)  # it killed itself once the warehouse had committed
        assert get_run(run.id).status == "loading", get_run(run.id)
        cluster.start_worker()  # a worker for a retry, if recovery wrongly asked for one
        settled = wait_until(lambda: _settled(run.id), 60, lambda: f"not settled: {get_run(run.id)}")
    finally:
        app.stop()
    # The warehouse's ledger says the load committed: the run succeeded, with no retry.
    assert (settled.status, settled.error, settled.records_loaded) == ("succeeded", None, RECORDS)
    assert [r.id for r in list_runs("big")] == [run.id]
    assert _rows(cluster.warehouse_url, "big") == (RECORDS, RECORDS, 1)
