"""A run the broker lost is sent again: the app sends a run to a queue no worker consumes yet,
Redis loses everything (FLUSHALL, as a Redis restarted without its data), and once a worker for
the queue starts, the run sent again executes, once."""

from __future__ import annotations

import logging

import pytest
import redis

from core import bootstrap
from core.runs import get_run
from tests.distributed.test_celery_workers import RECORDS, _ended, _feed, _rows
from tests.helpers import wait_until


@pytest.mark.parametrize("cluster_hosts", [()])
def test_a_run_the_broker_lost_is_sent_again_and_executes_once(cluster, hit_counter, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="tributary.celery")
    monkeypatch.setenv("TRIBUTARY_CELERY_RESEND_S", "1")
    broker = redis.Redis.from_url(cluster.broker_url)
    _feed(hit_counter, "lost", seconds=0.2, queue="late")
    app = bootstrap.build(background=True).start()
    try:
        run = app.start_run("lost")
        wait_until(lambda: broker.llen("late") >= 1, 30, "the run was not sent to queue late")
        broker.flushall()  # the broker loses the message before any worker claimed the run
        assert broker.llen("late") == 0 and get_run(run.id).status == "queued"
        wait_until(lambda: "sent again" in caplog.text, 30, "the lost run was not sent again")
        monkeypatch.setenv("TRIBUTARY_WORKER_QUEUES", "late")
        cluster.start_worker()
        [ended] = wait_until(lambda: _ended([run.id]), 120, lambda: f"{get_run(run.id)}\n{cluster.logs()}")
    finally:
        app.stop()
    assert (ended.status, ended.error) == ("succeeded", None)
    assert hit_counter.hits["lost"] == 1  # sent several times, executed once
    assert _rows(cluster.warehouse_url, "lost") == (RECORDS, RECORDS, 1)
    assert f"run {run.id}: no worker claimed it" in caplog.text
