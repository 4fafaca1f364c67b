"""The composition root: builds the process's services once, from one Settings, and wires
them to the event bus. app.py's lifespan and the CLI both come through here.

    services = bootstrap.build(settings, background=True)   # the app: dispatcher, scheduler
    services.start()
    ...
    services.stop()

What it builds:
- the run executor (core/execution.py), with its runner and destination registries;
- the executor that runs queued runs (core/executors.py, `local` by default);
- the dispatcher, which offers due queued runs to the executor (background only);
- the scheduler tick (background only);
- retries and watcher deliveries, listening to RunFinished;
- recovery of what a dead process left (runs, deliveries): at start, and in the background
  every RECOVERY_POLL_S for processes that die meanwhile;
- with the celery executor, in the background: the app host's own worker, which executes the
  runs of feeds loading into files on this host (core/queues.py) in this process.

In the foreground (the CLI, a script, a test), there is no dispatcher: start_run hands its run
to the executor at once, a run queued otherwise (a retry, a webhook's) waits for the app, and
the CLI's `run` executes its own retries (run_with_retries).
The event subscriptions are all here, made explicitly; importing a module subscribes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.engine import make_url
from sqlmodel import select

from common.clock import aware
from common.errors import TributaryError
from common.settings import Settings, get_settings, make_private
from core import events, queues, workers
from core.execution import RunExecutor
from core.executors import Executor, executor_class
from core.runs import RunOptions, cancel_run, create_run
from core.scheduler import SchedulerService
from core.services import recovery, retries
from core.services.deliveries import DeliveryService
from core.services.dispatcher import Dispatcher
from storage.db import get_engine, session_scope
from storage.models import Run, utcnow

log = logging.getLogger("tributary.services")
FOREGROUND_SLOTS = 64
STOP_GRACE_S = 10.0  # how long a stopping app waits for its cancelled runs to end


@dataclass
class Services:
    settings: Settings
    bus: events.EventBus
    run_executor: RunExecutor
    executor: Executor
    deliveries: DeliveryService
    dispatcher: Dispatcher | None = None
    scheduler: SchedulerService | None = None
    recovery_loop: recovery.RecoveryService | None = None  # background only: start-up recovers once otherwise
    app_host_worker: object | None = None  # background, celery executor only (start() and stop())
    started: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def background(self) -> bool:
        return self.dispatcher is not None

    def start(self) -> "Services":
        """Recover what a dead process left, then start the loops (background only)."""
        if self.started:
            return self
        make_private(self.settings.data_dir)
        open_store(self.settings)  # migrates the store
        recovered = recovery.recover_interrupted_runs()
        if recovered:
            log.warning("settled %d run(s) a stopped process left: %s", len(recovered), ", ".join(recovered))
        resumed = self.deliveries.resume_left()
        if resumed:
            log.warning("took over %d notification(s) a stopped process left pending", len(resumed))
        if self.dispatcher is not None:
            self.dispatcher.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.recovery_loop is not None:
            self.recovery_loop.start()
        if self.app_host_worker is not None:
            self.app_host_worker.start()
        self.started = True
        return self

    def stop(self, cancel_running: bool = False, grace_s: float = STOP_GRACE_S) -> None:
        """Stop the loops and the executor. With cancel_running (the app's shutdown, on SIGTERM
        or Ctrl-C), the runs this process executes are cancelled and given `grace_s` to end as
        `cancelled` with their sandboxes killed, rather than being found "interrupted" by the
        next start. Stopped services are no longer the process's: the next current() builds
        fresh ones rather than queueing runs nothing would execute."""
        if self.recovery_loop is not None:
            self.recovery_loop.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if cancel_running:
            self._cancel_in_flight(grace_s)
        self.executor.shutdown(wait=False)
        if self.app_host_worker is not None and self.started:
            self.app_host_worker.stop()
        self.started = False
        _forget(self)

    def _cancel_in_flight(self, grace_s: float) -> None:
        for run_id in self.executor.in_flight():
            with suppress(TributaryError):  # it ended meanwhile
                cancel_run(run_id)
        deadline = time.monotonic() + grace_s
        while self.executor.in_flight() and time.monotonic() < deadline:
            threading.Event().wait(0.05)
        if left := self.executor.in_flight():
            log.warning("stopping with %d run(s) still ending: %s", len(left), ", ".join(sorted(left)))

    # ------------------------------------------------------------ use cases

    def execute_run(self, run_id: str) -> Run:
        return self.run_executor.execute(run_id)

    def start_run(self, feed_name: str, trigger: str = "manual", payload: dict | None = None,
                  wait: bool = False, options: RunOptions | None = None) -> Run:
        """Queue a run and execute it: in this thread when wait=True, else through the executor
        (the dispatcher's queue in the app). `options`: a backfill or a full refresh."""
        if wait:
            return self.execute_run(create_run(feed_name, trigger, payload, announce=False, options=options).id)
        run = create_run(feed_name, trigger, payload, options=options)
        self.submit(run.id)
        return run

    def submit(self, run_id: str) -> None:
        """Have a queued run executed: the dispatcher's queue in the background (the run's
        RunQueued already woke it), the executor at once in the foreground."""
        if self.dispatcher is None:
            self.executor.submit(run_id)

    def run_with_retries(self, feed_name: str, trigger: str = "manual", payload: dict | None = None,
                         sleep: Callable[[float], None] | None = None,
                         on_retry: Callable[[Run], None] = lambda retry: None,
                         options: RunOptions | None = None) -> list[Run]:
        """Execute a run in this thread and then each retry it earns, waiting for each retry's
        backoff: what `core.cli run` does, since no dispatcher would start them. Every attempt,
        in order."""
        sleep = sleep or _sleep
        attempts = [self.start_run(feed_name, trigger, payload, wait=True, options=options)]
        while (retry := _queued_retry_of(attempts[-1])) is not None:
            on_retry(retry)
            if retry.not_before is not None:
                sleep(max(0.0, (aware(retry.not_before) - utcnow()).total_seconds()))
            attempts.append(self.execute_run(retry.id))
        return attempts


def open_store(settings: Settings) -> None:
    """Open (and migrate) the store; one line naming it and what to do when it cannot be read."""
    try:
        get_engine()
    except TributaryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt file, a lost server, a bad URL
        raise TributaryError(store_problem(settings.database_url, exc)) from None


def store_problem(url: str, exc: Exception) -> str:
    if isinstance(exc, ImportError):  # a PostgreSQL store without its driver (an extra)
        return (f"the store {make_url(url).render_as_string(hide_password=True)} needs the PostgreSQL driver "
                "(psycopg), which is not installed: make extras (or .venv/bin/uv pip install -r "
                "requirements-extras.txt)")
    reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        return (f"the store {path} cannot be read ({reason}): restore it from a backup, or move it aside "
                "to start with an empty store (feeds, connections and run history are kept in it)")
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is shown as nothing
        shown = "(TRIBUTARY_DATABASE_URL)"
    return (f"the store at {shown} cannot be read ({reason}): check that the server is up and "
            "TRIBUTARY_DATABASE_URL is right, or restore the database from a backup")


def _sleep(seconds: float) -> None:
    threading.Event().wait(seconds)


def _queued_retry_of(run: Run) -> Run | None:
    root = run.parent_run_id or run.id
    with session_scope() as session:
        retry = session.exec(
            select(Run).where(Run.parent_run_id == root, Run.attempt == run.attempt + 1, Run.status == "queued")
        ).first()
    return retry


def build(settings: Settings | None = None, *, background: bool = False,
          max_concurrent: int | None = None) -> Services:
    """Build the process's services and make them current (see the module docstring)."""
    global _current
    settings = settings or get_settings()
    bus = events.bus
    bus.clear()
    run_executor = RunExecutor()
    deliveries = DeliveryService()
    dispatcher: Dispatcher | None = None

    def done(_run_id: str) -> None:
        if dispatcher is not None:
            dispatcher.wake()

    # In the foreground nothing queues runs but the command itself: no cap to keep.
    slots = max_concurrent or (settings.max_concurrent_runs if background else FOREGROUND_SLOTS)
    executor = executor_class(settings.executor)(run_executor.execute, slots, on_done=done)
    services = Services(settings=settings, bus=bus, run_executor=run_executor, executor=executor,
                        deliveries=deliveries)
    if background:
        dispatcher = Dispatcher(executor)
        services.dispatcher = dispatcher
        services.scheduler = SchedulerService()
        services.recovery_loop = recovery.RecoveryService()
        services.app_host_worker = _app_host_worker(executor, run_executor, settings)
        bus.subscribe(events.RunQueued, dispatcher.wake)
    bus.subscribe(events.CancelRequested, run_executor.cancel)
    bus.subscribe(events.RunFinished, retries.on_run_finished)
    bus.subscribe(events.RunFinished, deliveries.on_run_finished)
    with _lock:
        previous, _current = _current, services
    if previous is not None and previous is not services:
        previous.stop()
        previous.deliveries.shutdown()
    return services


def _app_host_worker(executor: Executor, run_executor: RunExecutor, settings: Settings):
    """The worker an executor that sends runs elsewhere keeps in the app for the runs that must
    execute on the app's host (the celery executor's AppHostWorker); None for the others."""
    make = getattr(executor, "app_host_worker", None)
    if make is None:
        return None
    return workers.Registered(make(run_executor.execute, settings.max_concurrent_runs), [queues.APP_HOST_QUEUE])


_current: Services | None = None
_lock = threading.Lock()


def _forget(services: Services) -> None:
    """No longer the process's services: drop them and their event subscriptions."""
    global _current
    with _lock:
        if _current is services:
            _current = None
            services.bus.clear()


def reset() -> None:
    """Stop and forget the process's services, if any (a test's clean-up)."""
    with _lock:
        services = _current
    if services is not None:
        services.stop()
        services.deliveries.shutdown()


def current() -> Services:
    """The process's services; built in the foreground on first use where nothing built them
    (a script that imports core, a test)."""
    with _lock:
        services = _current
    return services if services is not None else build()


def execute_run(run_id: str) -> Run:
    """Execute a queued run in this thread, with the process's run executor."""
    return current().execute_run(run_id)


def start_run(feed_name: str, trigger: str = "manual", payload: dict | None = None, wait: bool = False,
              options: RunOptions | None = None) -> Run:
    return current().start_run(feed_name, trigger, payload, wait, options)
