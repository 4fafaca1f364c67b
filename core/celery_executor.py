"""The `celery` executor: queued runs execute on worker processes, on this machine or others,
through a Celery broker (Redis), with the store as the source of truth.

    TRIBUTARY_EXECUTOR=celery
    TRIBUTARY_CELERY_BROKER_URL=redis://127.0.0.1:6379/0
    python -m core.worker          # on each worker machine (core/worker.py)

The app's dispatcher offers due queued runs to CeleryExecutor, which sends each as a task
naming the run (nothing else: a worker reads the run, its feed and its state from the store).
A worker's task hands the run to the run executor (core/execution.py), whose claim - a
conditional update, queued -> running - lets one delivery execute it: a task delivered twice
(a redelivery after a worker was lost, a second send) finds the run claimed or finished, logs
that, and does nothing.

The run's log is written in the data dir of the worker that executes it (the task points the
run's log_path there before the claim) and shipped into the store as it grows
(core/log_chunks.py), where the app reads it: no folder is shared.

Delivery: tasks are acknowledged late (after the run ended) and given back when their worker
is lost, so a run whose worker died before claiming it is delivered again. The broker's
visibility timeout (the time before an unacknowledged task is delivered again) is longer than
the longest run allowed (a day, or TRIBUTARY_RUN_TIMEOUT_S if longer, plus an hour), so that a
run still executing is never delivered to a second worker; a run whose worker died after
claiming it is settled by recovery from its heartbeat (core/heartbeat.py), long before that.

Runs wait in the store, not in the broker: the executor keeps at most `max_concurrent` sent
runs that no worker has claimed yet, so the Runs page shows them as queued, and cancelling one
needs no broker. A run sent and then lost by the broker (a Redis restarted without its data)
is sent again by the next app process that starts (a run sent twice executes once).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from celery import Celery
from sqlmodel import select, update

from common.errors import NotFound, TributaryError
from common.process import worker_id
from common.settings import get_settings
from core.executors import Executor
from core.runs import ACTIVE_STATUSES, get_run
from core.validation import TIMEOUT_RANGE_S
from storage.db import session_scope
from storage.models import Run

log = logging.getLogger("tributary.celery")

TASK_NAME = "tributary.execute_run"
QUEUE = "tributary.runs"
VISIBILITY_MARGIN_S = 3_600  # the load and commit of the longest run, and a margin


def visibility_timeout_s() -> int:
    """Longer than the longest run allowed: a feed's timeout (at most a day) or the default
    TRIBUTARY_RUN_TIMEOUT_S, whichever is longer, plus the margin."""
    return max(TIMEOUT_RANGE_S[1], get_settings().run_timeout_s) + VISIBILITY_MARGIN_S


def broker_url() -> str:
    url = os.environ.get("TRIBUTARY_CELERY_BROKER_URL", "").strip()
    if not url:
        raise TributaryError("executor celery: TRIBUTARY_CELERY_BROKER_URL is not set "
                             "(e.g. redis://127.0.0.1:6379/0)")
    return url


_apps: dict[str, Celery] = {}
_apps_lock = threading.Lock()
# What a worker's task calls to execute a run: set by core/worker.py (bootstrap's run executor).
_execute: Callable[[str], Run] | None = None


def celery_app(url: str | None = None) -> Celery:
    """The Celery app for a broker, with the run task registered (one per broker URL)."""
    url = url or broker_url()
    with _apps_lock:
        if url not in _apps:
            _apps[url] = _make_app(url)
        return _apps[url]


def _make_app(url: str) -> Celery:
    app = Celery("tributary", broker=url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json", accept_content=["json"],
        task_ignore_result=True,  # the run's outcome is in the store
        task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker reserves no more runs than it can execute
        broker_transport_options={"visibility_timeout": visibility_timeout_s()},
        broker_connection_retry_on_startup=True,
        # A run goes on when the broker is lost: its outcome goes to the store, not the broker.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(execute_run_task)
    return app


def serve(execute: Callable[[str], Run]) -> None:
    """Make this process's tasks execute runs with `execute` (the worker's run executor)."""
    global _execute
    _execute = execute


def execute_run_task(run_id: str) -> dict:
    """The task: execute the run if it can be claimed; otherwise nothing (said in the log)."""
    if _execute is None:
        raise TributaryError("this process executes no runs (start workers with `python -m core.worker`)")
    try:
        before = get_run(run_id)
    except NotFound:
        log.info("run %s delivered, but the store has no such run (deleted since); nothing to do", run_id)
        return {"run_id": run_id, "executed": False, "status": None}
    if before.status != "queued" or before.cancel_requested:
        log.info("run %s delivered again, or after it was taken: it is %s (worker %s); nothing to do",
                 run_id, before.status, before.worker or "none")
        return {"run_id": run_id, "executed": False, "status": before.status}
    if not _take_log(run_id, before.log_path):
        log.info("run %s is being taken by another delivery; nothing to do", run_id)
        return {"run_id": run_id, "executed": False, "status": "queued"}
    run = _execute(run_id)
    if run.status in ACTIVE_STATUSES and run.worker != worker_id():
        log.info("run %s was claimed by %s as it was delivered here; nothing to do", run_id, run.worker)
        return {"run_id": run_id, "executed": False, "status": run.status}
    log.info("run %s ended %s", run_id, run.status)
    return {"run_id": run_id, "executed": True, "status": run.status}


def _take_log(run_id: str, seen: str | None) -> bool:
    """Point the queued run's log at this worker's data dir (the path the app gave it is the
    app's). Conditional on the path this delivery read: of two deliveries at once, the one that
    moved the log goes on to the run executor's claim, the other does nothing."""
    path = str(get_settings().logs_dir / f"{run_id}.log")
    with session_scope() as session:
        moved = session.execute(
            update(Run).where(Run.id == run_id, Run.status == "queued", Run.log_path == seen).values(log_path=path)
        )
        return moved.rowcount == 1


def send(run_id: str, url: str | None = None) -> None:
    """Send a run's task to the workers."""
    celery_app(url).send_task(TASK_NAME, args=[run_id], queue=QUEUE)


class CeleryExecutor(Executor):
    """Sends queued runs to the workers (see the module docstring). `execute` is not used here:
    the workers execute; `max_concurrent` bounds the runs sent that no worker has claimed."""

    def __init__(self, execute: Callable[[str], object] | None = None, max_concurrent: int = 2,
                 on_done: Callable[[str], None] = lambda run_id: None, url: str | None = None):
        self.max_concurrent = max(1, max_concurrent)
        self.url = url or broker_url()
        self._sent: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False

    def in_flight(self) -> set[str]:
        """None: the workers execute the runs, this process holds none (so stopping the app
        cancels nothing; the runs sent and not yet claimed stay queued, for the workers)."""
        return set()

    def waiting(self) -> set[str]:
        """The runs sent that no worker has claimed yet (still queued in the store)."""
        with self._lock:
            sent = set(self._sent)
        if not sent:
            return set()
        with session_scope() as session:
            queued = set(session.exec(select(Run.id).where(Run.id.in_(list(sent)), Run.status == "queued")).all())
        with self._lock:
            self._sent -= sent - queued
            return set(self._sent)

    def free_slots(self) -> int:
        if self._closed:
            return 0
        return max(0, self.max_concurrent - len(self.waiting()))

    def submit(self, run_id: str) -> bool:
        """Send the run, unless it was sent and is still waiting for a worker (then True: it is
        on its way). False when `max_concurrent` sent runs are waiting already."""
        with self._lock:
            if self._closed:
                return False
            if run_id in self._sent:
                return True
            if len(self._sent) >= self.max_concurrent:
                return False
            self._sent.add(run_id)
        try:
            send(run_id, self.url)
        except Exception:  # noqa: BLE001 - the broker is down: the run stays queued, offered again
            with self._lock:
                self._sent.discard(run_id)
            log.exception("run %s could not be sent to the workers (broker %s); it stays queued", run_id,
                          _shown(self.url))
            return False
        return True

    def shutdown(self, wait: bool = False) -> None:
        """Take no more runs. The runs sent are the workers' (wait has nothing to wait for)."""
        self._closed = True


def _shown(url: str) -> str:
    """A broker URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = f"{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else f"{credentials}@{host}"
    return f"{scheme}{sep}{rest}"
