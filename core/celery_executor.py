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

Queues (core/queues.py): each run goes to its feed's queue (the default queue unless the feed
is pinned to one), and a feed loading into files on the app's host (DuckDB, Parquet) to the
app host's queue, which the app's own worker consumes: AppHostWorker, a Celery worker on
threads of the app process, started and stopped with the app's services (core/bootstrap.py).

Runs wait in the store, not in the broker: the executor keeps at most `max_concurrent` sent
runs per queue that no worker has claimed yet, so the Runs page shows them as queued, a queue
no worker consumes holds up only its own feeds, and cancelling one needs no broker. A run sent
and still unclaimed after TRIBUTARY_CELERY_RESEND_S (then twice that, and so on, up to an
hour) is sent again, in case the broker lost it (a Redis restarted without its data); a run
sent twice executes once. The next app process that starts sends again what this one had sent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

from celery import Celery
from sqlmodel import select, update

from common.backoff import backoff_s
from common.errors import NotFound, TributaryError
from common.process import worker_id
from common.settings import get_settings
from core import queues
from core.executors import Executor
from core.runs import ACTIVE_STATUSES, get_run
from core.validation import TIMEOUT_RANGE_S
from storage.db import session_scope
from storage.models import Feed, Run

log = logging.getLogger("tributary.celery")

TASK_NAME = "tributary.execute_run"
QUEUE = queues.DEFAULT_QUEUE
VISIBILITY_MARGIN_S = 3_600  # the load and commit of the longest run, and a margin
RESEND_MAX_S = 3_600  # the longest wait between two sends of a run no worker claims
APP_HOST_STOP_S = 10.0  # how long the app's stop waits for its worker to end


def visibility_timeout_s() -> int:
    """Longer than the longest run allowed: a feed's timeout (at most a day) or the default
    TRIBUTARY_RUN_TIMEOUT_S, whichever is longer, plus the margin."""
    return max(TIMEOUT_RANGE_S[1], get_settings().run_timeout_s) + VISIBILITY_MARGIN_S


def broker_url() -> str:
    url = get_settings().celery_broker_url
    if not url:
        raise TributaryError("executor celery: TRIBUTARY_CELERY_BROKER_URL is not set "
                             "(e.g. redis://127.0.0.1:6379/0)")
    return url


_apps: dict[str, Celery] = {}
_apps_lock = threading.Lock()
# What a worker's task calls to execute a run: set by core/worker.py (bootstrap's run executor).
_execute: Callable[[str], Run] | None = None
# The runs this process's tasks are executing (the app host's worker's, in the app).
_executing: set[str] = set()
_executing_lock = threading.Lock()


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
        task_default_queue=queues.DEFAULT_QUEUE,
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
    with _executing_lock:
        _executing.add(run_id)
    try:
        run = _execute(run_id)
    finally:
        with _executing_lock:
            _executing.discard(run_id)
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


def executing_here() -> set[str]:
    """The runs this process's tasks are executing now."""
    with _executing_lock:
        return set(_executing)


def queue_of_run(run_id: str) -> str:
    """The queue a run is sent to: its feed's (core/queues.py)."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        feed = session.get(Feed, run.feed_id) if run is not None and run.feed_id is not None else None
        return queues.route(feed.queue, list(feed.destinations)) if feed is not None else queues.DEFAULT_QUEUE


def send(run_id: str, url: str | None = None, queue: str | None = None) -> None:
    """Send a run's task to the workers of its queue (the run's feed's, unless given)."""
    celery_app(url).send_task(TASK_NAME, args=[run_id], queue=queue or queue_of_run(run_id))


@dataclass
class _Sent:
    """A run sent to the workers and not claimed yet."""

    queue: str
    at: float  # time.monotonic() of its last send
    sends: int = 1

    def resend_due(self, base_s: float, now: float) -> bool:
        return now - self.at >= min(backoff_s(base_s, self.sends), max(base_s, RESEND_MAX_S))


class CeleryExecutor(Executor):
    """Sends queued runs to the workers (see the module docstring). `execute` is not used here:
    the workers execute; `max_concurrent` bounds, per queue, the runs sent that no worker has
    claimed."""

    def __init__(self, execute: Callable[[str], object] | None = None, max_concurrent: int = 2,
                 on_done: Callable[[str], None] = lambda run_id: None, url: str | None = None):
        self.max_concurrent = max(1, max_concurrent)
        self.url = url or broker_url()
        self.resend_s = get_settings().celery_resend_s
        self._sent: dict[str, _Sent] = {}
        self._lock = threading.Lock()
        self._closed = False

    def in_flight(self) -> set[str]:
        """The runs the app host's worker executes in this process (stopping the app cancels
        those; the runs sent to other workers are theirs, and stay as they are)."""
        return executing_here()

    def waiting(self) -> set[str]:
        """The runs sent that no worker has claimed yet (still queued in the store); those
        unclaimed for long are sent again."""
        with self._lock:
            sent = set(self._sent)
        if not sent:
            return set()
        with session_scope() as session:
            queued = set(session.exec(select(Run.id).where(Run.id.in_(list(sent)), Run.status == "queued")).all())
        with self._lock:
            for run_id in sent - queued:
                self._sent.pop(run_id, None)
            overdue = [(run_id, entry) for run_id, entry in self._sent.items()
                       if entry.resend_due(self.resend_s, time.monotonic())]
        for run_id, entry in overdue:
            self._resend(run_id, entry)
        with self._lock:
            return set(self._sent)

    def _resend(self, run_id: str, entry: _Sent) -> None:
        waited = time.monotonic() - entry.at
        try:
            send(run_id, self.url, entry.queue)
        except Exception as exc:  # noqa: BLE001 - the broker is down: the next look tries again
            log.warning("run %s could not be sent again to queue %s (broker %s): %s", run_id, entry.queue,
                        _shown(self.url), exc)
            return
        with self._lock:
            entry.at, entry.sends = time.monotonic(), entry.sends + 1
        log.warning("run %s: no worker claimed it %.0f s after it was sent to queue %s: sent again (the broker "
                    "may have lost it, or no worker consuming %s is free or up); it executes once", run_id,
                    waited, entry.queue, entry.queue)

    def free_slots(self) -> int:
        """0 once shut down, else `max_concurrent`: each queue has that room for unclaimed runs,
        and submit() says whether the run's own queue has some left. Looking also forgets the
        runs claimed since, and sends again those unclaimed for long (waiting())."""
        if self._closed:
            return 0
        self.waiting()
        return self.max_concurrent

    def submit(self, run_id: str) -> bool:
        """Send the run to its queue, unless it was sent and is still waiting for a worker (then
        True: it is on its way). False when `max_concurrent` sent runs wait in its queue already."""
        with self._lock:
            if self._closed:
                return False
            if run_id in self._sent:
                return True
        queue = queue_of_run(run_id)
        with self._lock:
            if sum(1 for entry in self._sent.values() if entry.queue == queue) >= self.max_concurrent:
                return False
            self._sent[run_id] = _Sent(queue, time.monotonic())
        try:
            send(run_id, self.url, queue)
        except Exception:  # noqa: BLE001 - the broker is down: the run stays queued, offered again
            with self._lock:
                self._sent.pop(run_id, None)
            log.exception("run %s could not be sent to the workers (broker %s); it stays queued", run_id,
                          _shown(self.url))
            return False
        return True

    def shutdown(self, wait: bool = False) -> None:
        """Take no more runs. The runs sent are the workers' (wait has nothing to wait for)."""
        self._closed = True

    def app_host_worker(self, execute: Callable[[str], Run], concurrency: int) -> "AppHostWorker":
        """The app's own worker, for the app host's queue (see AppHostWorker)."""
        return AppHostWorker(execute, concurrency, self.url)


class AppHostWorker:
    """A Celery worker on threads of the app process, consuming the app host's queue: the runs
    of feeds whose destinations are files on the app's host (core/queues.py) execute here,
    with the app's run executor, so that `make run` with the celery executor needs no other
    worker for them. Started and stopped with the app's services (core/bootstrap.py)."""

    def __init__(self, execute: Callable[[str], Run], concurrency: int, url: str | None = None):
        self._execute, self.concurrency, self.url = execute, max(1, concurrency), url or broker_url()
        self._controller = None
        self._thread: threading.Thread | None = None

    @property
    def hostname(self) -> str:
        return f"tributary-app-{os.getpid()}@{socket.gethostname()}"

    def start(self) -> "AppHostWorker":
        serve(self._execute)
        app = celery_app(self.url)
        self._controller = app.WorkController(
            app=app, hostname=self.hostname, pool="threads", concurrency=self.concurrency,
            queues=[queues.APP_HOST_QUEUE], without_heartbeat=True, without_mingle=True, without_gossip=True,
            ready_callback=None,
        )
        self._thread = threading.Thread(target=self._serve, name="app-host-worker", daemon=True)
        self._thread.start()
        log.info("the app host's worker consumes queue %s, up to %d runs at a time", queues.APP_HOST_QUEUE,
                 self.concurrency)
        return self

    def _serve(self) -> None:
        try:
            self._controller.start()
        except Exception:  # noqa: BLE001 - said in the log; the app goes on, its runs stay queued
            log.exception("the app host's worker stopped")

    def stop(self, timeout_s: float = APP_HOST_STOP_S) -> None:
        """Take no more runs from the queue, and wait (up to timeout_s) for those in progress."""
        if self._thread is None:
            return
        from celery.worker import state

        # Celery's way to stop a worker from outside its thread: its loop looks at this flag
        # (a warm shutdown: the tasks in progress end first; unstarted ones go back to the queue).
        state.should_stop = 0
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("the app host's worker did not stop within %g s; it ends with the process", timeout_s)
        else:
            state.should_stop = None
        self._thread = None


def _shown(url: str) -> str:
    """A broker URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = f"{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else f"{credentials}@{host}"
    return f"{scheme}{sep}{rest}"
