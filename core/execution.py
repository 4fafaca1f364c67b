"""Executing a queued run: the run executor.

A run's path: claim it (queued -> running, a conditional update, so it executes once wherever
it is delivered), prepare its sandbox job, run the script while its spool parts are staged,
load every destination (each commits on its own, idempotently, tagged with the run id), and
only then advance the feed's state. Anything that fails before that leaves the state and the
destinations as they were. The executor's collaborators (settings, runner and destination
registries, the event bus, the clock) are injected by core/bootstrap.py.
"""

from __future__ import annotations

import shutil
import threading
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlmodel import update

from common.errors import TributaryError
from common.process import worker_id
from common.settings import Settings, get_settings
from core import events
from core.connections import get_connection_by_id, sandbox_material
from core.run_log import RunLog as _RunLog
from core.runs import finish, finished, get_run
from core.state import current_state_in
from runners import get_runner
from runners.base import ScriptJob, ScriptOutcome
from runners.parts import PartCollector
from storage.db import session_scope
from storage.destinations import get_destination
from storage.destinations.base import LoadRequest, Stager
from storage.models import Feed, FeedState, Run, utcnow

CANCEL_POLL_S = 0.5
PART_POLL_S = 0.01  # how soon a completed spool part reaches the destinations' stagers


def _update(run_id: str, **values) -> None:
    with session_scope() as session:
        run = session.get(Run, run_id)
        for key, value in values.items():
            setattr(run, key, value)
        session.add(run)


def _cancel_requested(run_id: str) -> bool:
    with session_scope() as session:
        run = session.get(Run, run_id)
        return bool(run and run.cancel_requested)


def _watch_for_cancel(run_id: str, handle, done: threading.Event) -> None:
    while not done.wait(CANCEL_POLL_S):
        try:
            if _cancel_requested(run_id):
                handle.cancel()
                return
        except Exception:  # noqa: BLE001 - a store hiccup must not kill the watcher
            continue


def _claim(run_id: str) -> bool:
    """Move a queued run to running, unless another thread or process already did: the
    conditional update makes each run execute exactly once."""
    with session_scope() as session:
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "queued", Run.cancel_requested.is_(False))
            .values(status="running", started_at=utcnow(), worker=worker_id())
        )
        return result.rowcount == 1


def _prepare(run_id: str, settings: Settings) -> tuple[Run, Feed, ScriptJob]:
    with session_scope() as session:
        run = session.get(Run, run_id)
        feed = session.get(Feed, run.feed_id)
        run.state_before = current_state_in(session, feed.id)
        session.add(run)
    conn = get_connection_by_id(feed.connection_id) if feed.connection_id else None
    material, secrets = sandbox_material(conn)
    job = ScriptJob(
        run_id=run.id, feed_name=feed.name, script=feed.script, work_dir=settings.work_root / run.id,
        dependencies=list(feed.dependencies), metadata=dict(run.state_before), connection=material,
        trigger_payload=run.trigger_payload, timeout_s=feed.timeout_s or settings.run_timeout_s,
        memory_limit_mb=feed.memory_limit_mb or settings.memory_limit_mb, secrets=secrets, network=feed.network,
    )
    return run, feed, job


class _Staging:
    """While the script runs, each spool part it completes is moved out of its reach and
    handed to the stager of every destination that has one (see Stager), so that a large run's
    parsing and typing overlap with the script writing the next part. Nothing is loaded here.
    The stagers are made on the follow thread, started once the sandbox has been launched:
    importing a destination's driver then overlaps with the script's start instead of
    delaying it (a thread importing meanwhile would hold the interpreter while the sandbox is
    being laid out and launched)."""

    def __init__(self, run: Run, feed: Feed, job: ScriptJob, settings: Settings, log: _RunLog,
                 destinations: Callable = get_destination):
        self._feed, self._settings, self._log, self._run_id = feed, settings, log, run.id
        self._destinations = destinations
        self._dirs = [settings.work_root / f"{run.id}.parts"]
        self.collector = PartCollector(job.work_dir / "out" / "spool", self._dirs[0])
        self.stagers: dict[str, Stager] = {}
        self._done = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> None:
        """Begin following the spool: called once the sandbox is on its way."""
        self._thread.start()

    def _make_stagers(self) -> None:
        for name in self._feed.destinations:
            work_dir = self._settings.work_root / f"{self._run_id}.stage-{name}"
            stager = self._destinations(name).stager(self._feed.load_type, work_dir)
            if stager is not None:
                self.stagers[name] = stager
                self._dirs.append(work_dir)

    def _follow(self) -> None:
        try:
            self._make_stagers()
            while not self._done.wait(PART_POLL_S):
                self._take(final=False)
        except Exception as exc:  # noqa: BLE001 - reported by finish(), which fails the run
            self._error = exc

    def _take(self, final: bool) -> None:
        for part in self.collector.collect(final):
            for stager in self.stagers.values():
                try:
                    stager.add(part)
                except Exception as exc:  # noqa: BLE001 - a stager's surprise costs speed, not the run
                    stager.gave_up = stager.gave_up or f"staging failed: {exc}"

    def _stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def finish(self) -> list[Path]:
        """After the script succeeded: the remaining parts, then every part in order."""
        self._done.set()
        for stager in list(self.stagers.values()):
            stager.script_ended()  # the parts left may use every core
        self._stop()
        if self._error is not None:
            raise self._error
        for stager in self.stagers.values():
            stager.script_ended()  # again, for a stager made after the first call
        self._take(final=True)
        for name, stager in self.stagers.items():
            if stager.gave_up:
                self._log.system(f"{name}: loading the general way ({stager.gave_up})")
        return list(self.collector.parts)

    def close(self) -> None:
        self._stop()
        for stager in self.stagers.values():
            stager.close()
        for path in self._dirs:
            shutil.rmtree(path, ignore_errors=True)


def _commit(run_id: str, feed_id: int, outcome: ScriptOutcome, loaded: int, results: dict) -> None:
    """The one place a feed's state advances: after every destination committed."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if outcome.metadata is not None:
            session.add(FeedState(feed_id=feed_id, run_id=run_id, state=outcome.metadata, reason="run"))
            run.state_after = outcome.metadata
        run.records_loaded = loaded
        run.records_written = outcome.records
        run.destination_results = results
        finish(session, run, "succeeded")


def _fail(run_id: str, status: str, error: str | None, error_line: int | None = None, **values) -> None:
    with session_scope() as session:
        run = session.get(Run, run_id)
        for key, value in values.items():
            setattr(run, key, value)
        finish(session, run, status, error, error_line)


class RunExecutor:
    """Executes queued runs to their end in the calling thread. One per process (bootstrap),
    shared by the threads that execute runs; it keeps the sandbox handle of each run it
    executes, so that a CancelRequested event kills it at once (other processes' runs see the
    flag within CANCEL_POLL_S)."""

    def __init__(self, settings: Callable[[], Settings] = get_settings, runners: Callable = get_runner,
                 destinations: Callable = get_destination, clock: Callable[[], datetime] = utcnow):
        self._settings, self._runners, self._destinations, self._clock = settings, runners, destinations, clock
        self._handles: dict[str, object] = {}  # run id -> RunHandle, for cancelling in this process
        self._lock = threading.Lock()

    def cancel(self, event: events.CancelRequested) -> None:
        with self._lock:
            handle = self._handles.get(event.run_id)
        if handle is not None:
            handle.cancel()

    def execute(self, run_id: str) -> Run:
        """Execute a queued run to its end. Never raises for the run's own failures: they are
        recorded on the run."""
        settings = self._settings()
        if not _claim(run_id):
            return get_run(run_id)  # cancelled before it started, or executed elsewhere
        try:
            run, feed, job = _prepare(run_id, settings)
        except Exception as exc:  # noqa: BLE001 - e.g. secrets that no longer decrypt
            _fail(run_id, "failed", f"could not prepare the run: {exc}")
            return finished(run_id)
        log = _RunLog(Path(run.log_path))
        log.system(f"run {run.id} of feed {feed.name} started ({run.trigger}, runner {settings.runner})")
        staging = None
        try:
            staging = _Staging(run, feed, job, settings, log, self._destinations)
            outcome = self._run_script(run, job, log, settings, on_started=staging.start)
            if not outcome.ok:
                status = "cancelled" if outcome.status == "cancelled" else "failed"
                log.system(f"script {status}: {outcome.error}")
                _fail(run.id, status, outcome.error, outcome.error_line, records_written=outcome.records)
                return finished(run.id)
            log.system(f"script finished: {outcome.records} records in {outcome.duration_s:.2f} s")
            if _cancel_requested(run.id):
                _fail(run.id, "cancelled", "cancelled by a user before loading", records_written=outcome.records)
                return finished(run.id)
            files = staging.finish()
            _update(run.id, status="loading", loading_at=self._clock(), records_written=outcome.records)
            loaded, results = self._load(run, feed, outcome, files, staging.stagers, log)
            _commit(run.id, feed.id, outcome, loaded, results)
            saved = "saved" if outcome.metadata is not None else "unchanged"
            log.system(f"run succeeded: {loaded} records loaded; state {saved}")
        except Exception as exc:  # noqa: BLE001 - recorded on the run, state untouched
            log.system(f"run failed: {exc}")
            _fail(run.id, "failed", str(exc))
        finally:
            if staging is not None:
                staging.close()
            log.close()
            shutil.rmtree(job.work_dir, ignore_errors=True)
        return finished(run.id)

    def _run_script(self, run: Run, job: ScriptJob, log: _RunLog, settings: Settings,
                    on_started: Callable[[], None] = lambda: None) -> ScriptOutcome:
        handle = self._runners(settings.runner, settings).start(job, log)
        on_started()
        with self._lock:
            self._handles[run.id] = handle
        done = threading.Event()
        watcher = threading.Thread(target=_watch_for_cancel, args=(run.id, handle, done), daemon=True)
        watcher.start()
        try:
            return handle.wait()
        finally:
            done.set()
            with self._lock:
                self._handles.pop(run.id, None)

    def _load(self, run: Run, feed: Feed, outcome: ScriptOutcome, files: list[Path], stagers: dict[str, Stager],
              log: _RunLog) -> tuple[int, dict]:
        """Load the spool into every destination; each commits on its own, idempotently."""
        results, loaded = {}, 0
        for name in feed.destinations:
            destination = self._destinations(name)
            log.system(f"loading {outcome.records} records into {destination.describe_target(feed.name)}")
            request = LoadRequest(table=feed.name, files=files, load_type=feed.load_type, run_id=run.id,
                                  loaded_at=self._clock(), primary_key=list(feed.primary_key),
                                  max_rejected_ratio=feed.max_rejected_ratio, staged=stagers.get(name))
            try:
                result = destination.load(request)
            except Exception as exc:  # noqa: BLE001 - any driver error fails the run, clearly
                raise TributaryError(f"loading into {name} failed: {exc}") from exc
            results[name] = {"rows": result.rows, "skipped": result.skipped, "location": result.location,
                             "rejected": result.rejected}
            loaded = max(loaded, result.rows)
            for change in result.schema_changes:
                log.system(f"{name}: {change}")
            if result.rejected:
                log.system(f"{name}: {result.rejected} rows rejected (see {feed.name}__rejected)")
            log.system(f"{name}: {'already held this run' if result.skipped else f'{result.rows} rows committed'}")
        return loaded, results
