"""Queues with real workers: a feed pinned to a queue runs only on the worker consuming it, and
a feed loading into the app's DuckDB file runs on the app host's own worker (in this process,
which plays the app) even when other workers are free."""

from __future__ import annotations

import pytest

from common.process import worker_id
from core import bootstrap, queues
from core.feeds import FeedSpec, create_feed
from core.runs import get_run
from tests.distributed.test_celery_workers import RECORDS, _ended, _feed, _rows, _script
from tests.helpers import wait_until, warehouse_rows


@pytest.mark.parametrize("cluster_hosts", [()])
def test_a_feed_pinned_to_a_queue_runs_only_on_the_worker_consuming_it(cluster, hit_counter, monkeypatch):
    default_worker = cluster.start_worker()
    monkeypatch.setenv("TRIBUTARY_WORKER_QUEUES", "big")
    big_worker = cluster.start_worker()
    monkeypatch.delenv("TRIBUTARY_WORKER_QUEUES")
    assert "from queue(s) big" in big_worker.log()
    pinned = [f"pinned{i}" for i in range(3)]
    for name in pinned:
        _feed(hit_counter, name, seconds=0.2, queue="big")
    _feed(hit_counter, "anywhere", seconds=0.2)
    app = bootstrap.build(background=True).start()
    try:
        started = [app.start_run(name).id for name in [*pinned, "anywhere"]]
        runs = wait_until(lambda: _ended(started), 120, lambda: cluster.logs())
    finally:
        app.stop()
    assert [(run.status, run.error) for run in runs] == [("succeeded", None)] * 4, cluster.logs()
    assert [cluster.worker_of(run.worker) for run in runs] == [big_worker] * 3 + [default_worker]
    assert all(_rows(cluster.warehouse_url, name) == (RECORDS, RECORDS, 1) for name in pinned)


def test_a_duckdb_feed_runs_on_the_app_hosts_worker_and_loads_the_apps_file(cluster, hit_counter, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "local")  # the app's warehouse; its workers are free meanwhile
    create_feed(FeedSpec(name="embedded", script=_script(hit_counter.url, "embedded", 0.2), destinations=["duckdb"]))
    app = bootstrap.build(background=True).start()
    try:
        run = app.start_run("embedded")
        [ended] = wait_until(lambda: _ended([run.id]), 60, lambda: f"{get_run(run.id)}\n{cluster.logs()}")
    finally:
        app.stop()
    assert (ended.status, ended.error) == ("succeeded", None)
    assert ended.worker == worker_id()  # this process, the app: not one of the two workers
    assert hit_counter.hits["embedded"] == 1
    assert warehouse_rows(cluster.data_dir, "SELECT count(*) FROM embedded") == [(RECORDS,)]
    assert queues.APP_HOST_QUEUE not in cluster.logs()
