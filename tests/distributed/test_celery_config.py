"""The celery executor's registration and delivery settings (no broker needed): chosen by name,
imported only when chosen, acknowledged late, and never delivered again while a run may still
be executing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import TributaryError
from core.executors import executor_class

ROOT = Path(__file__).resolve().parents[2]


def test_the_local_executor_never_imports_celery(tributary):
    code = ("import sys\nfrom core import bootstrap\nservices = bootstrap.build().start()\n"
            "print(type(services.executor).__name__, 'celery' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "TRIBUTARY_EXECUTOR"})
    assert result.stdout.split() == ["LocalExecutor", "False"], result.stderr


def test_the_celery_executor_is_chosen_by_name_and_needs_a_broker(tributary, monkeypatch):
    cls = executor_class("celery")
    assert cls.__name__ == "CeleryExecutor"
    monkeypatch.delenv("TRIBUTARY_CELERY_BROKER_URL", raising=False)
    with pytest.raises(TributaryError, match="TRIBUTARY_CELERY_BROKER_URL"):
        cls(None, 2)


def test_tasks_are_acknowledged_late_and_outlast_the_longest_run(tributary, monkeypatch):
    from core import celery_executor

    monkeypatch.setenv("TRIBUTARY_RUN_TIMEOUT_S", "3600")
    app = celery_executor._make_app("redis://127.0.0.1:1/0")
    task = app.tasks[celery_executor.TASK_NAME]
    assert task.acks_late and task.reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options["visibility_timeout"] > 86400
    monkeypatch.setenv("TRIBUTARY_RUN_TIMEOUT_S", str(3 * 86400))  # a longer default than a feed may set
    assert celery_executor.visibility_timeout_s() > 3 * 86400


def test_a_worker_without_a_broker_says_what_to_set(tributary):
    env = {k: v for k, v in os.environ.items() if k != "TRIBUTARY_CELERY_BROKER_URL"}
    result = subprocess.run([sys.executable, "-m", "core.worker"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 2
    assert "TRIBUTARY_CELERY_BROKER_URL is not set" in result.stderr


def test_a_worker_whose_heartbeat_would_look_stale_does_not_start(tributary):
    env = dict(os.environ, TRIBUTARY_CELERY_BROKER_URL="redis://127.0.0.1:1/0", TRIBUTARY_HEARTBEAT_S="30",
               TRIBUTARY_HEARTBEAT_STALE_S="60")
    result = subprocess.run([sys.executable, "-m", "core.worker"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 2
    assert "must be at most a third of TRIBUTARY_HEARTBEAT_STALE_S" in result.stderr


def test_the_dispatcher_sends_each_queued_run_once_and_stopping_the_app_cancels_none(tributary, monkeypatch):
    from core import bootstrap, celery_executor
    from core.feeds import FeedSpec, create_feed
    from core.runs import get_run
    from storage.db import session_scope
    from storage.models import Run

    monkeypatch.setenv("TRIBUTARY_EXECUTOR", "celery")
    monkeypatch.setenv("TRIBUTARY_CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    sent = []
    monkeypatch.setattr(celery_executor, "send", lambda run_id, url=None, queue=None: sent.append(run_id))
    services = bootstrap.build(background=True, max_concurrent=1)  # at most one sent run unclaimed
    for name in ("a", "b"):
        create_feed(FeedSpec(name=name, script="from lib import outputStream\n"))
    first, second = (services.start_run(name) for name in ("a", "b"))
    services.dispatcher.run_once()
    services.dispatcher.run_once()
    assert sent == [first.id]  # once, and the second waits in the store while the first is unclaimed
    with session_scope() as session:  # a worker claims the first
        run = session.get(Run, first.id)
        run.status = "running"
        session.add(run)
    services.dispatcher.run_once()
    assert sent == [first.id, second.id]
    services.stop(cancel_running=True)  # the app stops: the runs are the workers'
    assert (get_run(first.id).status, get_run(second.id).status) == ("running", "queued")
