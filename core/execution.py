"""Executing a queued run: the run executor, and the run protocol.

A run's path: claim it (queued -> running, a conditional update, so it executes once wherever
it is delivered), prepare its sandbox job, run the script while its spool parts are staged,
then commit it in two phases:

1. Pending. Before any destination commits, the store records the run's outcome in
   `runs.pending_outcome` (the new state, the counts, the destinations, the spool's files),
   in the same update that moves the run to `loading`.
2. Each destination commits the run's rows together with its ledger row (the run id), in one
   transaction of its own; a destination that already holds the run skips it.
3. The store marks the run succeeded and makes its state the feed's current one, in one
   transaction that also clears the pending outcome (core/runs.py complete_run).
4. The run's work dir, spool and stagers' files are removed.

Whatever dies when, nothing is loaded twice and nothing is lost: a process killed before 1
leaves a run with no pending outcome, which recovery fails (no destination can hold it); one
killed between 1 and 3 leaves a pending run and its spool, which recovery reconciles from the
destinations' ledgers (core/services/recovery.py): every destination holds the run - the
commit is finished (the state advances, the run shows its counts and is not retried); none -
the run failed cleanly; some - the others are loaded from the kept spool, or the run fails
with a message naming the destinations that hold it. One killed after 3 left a succeeded run
whose files recovery removes. The same holds for a load that fails in a live process: the
ledgers decide, so a load that raised after its COMMIT went through counts as committed.

Checkpoints (metadata.checkpoint in the script, runners/checkpoints.py): while the script
waits, the spool parts written since the previous checkpoint are committed by the same
protocol under a ledger id of their own (core/runs.py checkpoint_id): pending, each
destination, then the store records the checkpoint (its state becomes the feed's current
one; the run lists it) and the script is told to go on. The final commit loads only the parts
after the last checkpoint. Truncate and Insert replaces the table at the run's first commit
(its first checkpoint) and appends after it; a run resuming from a checkpoint of a run that
did not finish appends from its start: together they replace the table once. A process that
dies with a checkpoint pending leaves it to recovery, which settles it by its ledger id as it
settles a pending run, then fails the run: what its checkpoints committed stays.

The run's error path never raises: a failure it cannot record in the store (the store itself
may be what failed) goes to the run's log and the process's log, and the run stays active
for recovery. `common/faults.py`'s fault points mark each step for the crash tests
(tests/exactly_once). The executor's collaborators (settings, runner and destination
registries, the event bus, the clock) are injected by core/bootstrap.py.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlmodel import select, update

from common.errors import TributaryError
from common.faults import fault_point
from common.process import worker_id
from common.settings import Settings, get_settings
from core import events
from core.connections import get_connection_by_id, sandbox_material
from core.heartbeat import Heartbeat
from core.log_chunks import LogShipper, ships
from core.run_log import RunLog as _RunLog
from core.schema_history import change_lines, record_change
from core.runs import (checkpoint_id, complete_run, finish, finished, get_run, pending_outcome,
                       record_checkpoint)
from core.state import current_state_in
from runners import get_runner
from runners.base import ScriptJob, ScriptOutcome
from runners.checkpoints import Checkpoint, CheckpointError, CheckpointMarkers
from runners.parts import PartCollector
from storage.db import session_scope
from storage.destinations import get_destination
from storage.destinations.base import LoadRequest, Stager
from storage.models import Feed, FeedState, Run, utcnow

logger = logging.getLogger("tributary.runs")

CANCEL_POLL_S = 0.5
STORE_RETRY_WAITS_S = (0.2, 1.0, 3.0)  # between the attempts to record a committed run in the store
PART_POLL_S = 0.01  # how soon a completed spool part reaches the destinations' stagers


def _update(run_id: str, **values) -> None:
    with session_scope() as session:
        run = session.get(Run, run_id)
        for key, value in values.items():
            setattr(run, key, value)
        session.add(run)


def _still_ours(run_id: str, **values) -> bool:
    """Apply `values` only while the run is still running in this process (the fence of the
    two-phase commit: a run another process settled is not loaded here)."""
    with session_scope() as session:
        result = session.execute(
            update(Run).where(Run.id == run_id, Run.status == "running", Run.worker == worker_id()).values(**values)
        )
        return result.rowcount == 1


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
            .values(status="running", started_at=utcnow(), worker=worker_id(), heartbeat_at=utcnow())
        )
        return result.rowcount == 1


def _resumes(session, feed_id: int) -> str | None:
    """The checkpoint the feed's current state comes from, when its run did not finish
    (the ledger id), else None: a run starting from it resumes that run."""
    row = session.exec(
        select(FeedState).where(FeedState.feed_id == feed_id).order_by(FeedState.id.desc()).limit(1)
    ).first()
    if row is None or row.reason != "checkpoint" or not row.run_id:
        return None
    run = session.get(Run, row.run_id.rsplit("-c", 1)[0])
    return row.run_id if run is None or run.status != "succeeded" else None


def _prepare(run_id: str, settings: Settings) -> tuple[Run, Feed, ScriptJob, str | None]:
    with session_scope() as session:
        run = session.get(Run, run_id)
        feed = session.get(Feed, run.feed_id)
        options = run.options or {}
        if options.get("full_refresh"):
            run.state_before, resumes = {}, None
        elif "state" in options:
            run.state_before, resumes = dict(options["state"]), None
        else:
            run.state_before = current_state_in(session, feed.id)
            resumes = _resumes(session, feed.id)
        session.add(run)
    conn = get_connection_by_id(feed.connection_id) if feed.connection_id else None
    material, secrets = sandbox_material(conn)
    job = ScriptJob(
        run_id=run.id, feed_name=feed.name, script=feed.script, work_dir=settings.work_root / run.id,
        dependencies=list(feed.dependencies), metadata=dict(run.state_before), connection=material,
        trigger_payload=run.trigger_payload, timeout_s=feed.timeout_s or settings.run_timeout_s,
        memory_limit_mb=feed.memory_limit_mb or settings.memory_limit_mb, secrets=secrets, network=feed.network,
        checkpoints=not run.options,  # a backfill or full refresh takes none (core/runs.py RunOptions)
    )
    return run, feed, job, resumes


class _Staging:
    """While the script runs, each spool part it completes is moved out of its reach and
    handed to the stager of every destination that has one (see Stager), so that a large run's
    parsing and typing overlap with the script writing the next part. Nothing is loaded here,
    but for checkpoints: a marker the script wrote (runners/checkpoints.py) is committed by
    on_checkpoint with the parts since the previous one and their stagers, then answered;
    the next parts get stagers of their own.
    The stagers are made on the follow thread, started once the sandbox has been launched:
    importing a destination's driver then overlaps with the script's start instead of
    delaying it (a thread importing meanwhile would hold the interpreter while the sandbox is
    being laid out and launched)."""

    def __init__(self, run: Run, feed: Feed, job: ScriptJob, settings: Settings, log: _RunLog,
                 destinations: Callable = get_destination, load_type: str | None = None,
                 on_checkpoint: Callable | None = None):
        self._feed, self._settings, self._log, self._run_id = feed, settings, log, run.id
        self._destinations = destinations
        self._dirs = [settings.work_root / f"{run.id}.parts"]
        self.collector = PartCollector(job.work_dir / "out" / "spool", self._dirs[0])
        self.stagers: dict[str, Stager] = {}
        self.load_type = load_type or feed.load_type  # of the run's next commit
        self.committed = 0  # spool parts its checkpoints committed
        self.last_checkpoint: Checkpoint | None = None
        self.checkpoint_error: Exception | None = None
        self._markers = CheckpointMarkers(job.work_dir)
        self._on_checkpoint = on_checkpoint
        self._done = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> None:
        """Begin following the spool: called once the sandbox is on its way."""
        self._thread.start()

    def _make_stagers(self) -> None:
        suffix = f"-{self._markers.last}" if self._markers.last else ""
        for name in self._feed.destinations:
            work_dir = self._settings.work_root / f"{self._run_id}.stage-{name}{suffix}"
            stager = self._destinations(name).stager(self.load_type, work_dir)
            if stager is not None:
                self.stagers[name] = stager
                self._dirs.append(work_dir)

    def _renew_stagers(self) -> None:
        """The parts after a checkpoint are staged afresh, for the next commit's load type."""
        for stager in self.stagers.values():
            stager.close()
        for path in self._dirs[1:]:
            shutil.rmtree(path, ignore_errors=True)
        self.stagers, self._dirs = {}, self._dirs[:1]
        self._make_stagers()

    def _follow(self) -> None:
        """Until the script ends. After an error (reported by finish(), which fails the run)
        nothing more is taken, but a checkpoint the script asks for is still answered: with
        that error, so that the script does not wait for it until its timeout."""
        try:
            self._make_stagers()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            self._error = exc
        while not self._done.wait(PART_POLL_S):
            try:
                if self._error is None:
                    self._take(final=False)
                self._checkpoint_if_asked()
            except Exception as exc:  # noqa: BLE001 - see the docstring
                self._error = self._error or exc

    def _take(self, final: bool) -> None:
        for part in self.collector.collect(final):
            for stager in self.stagers.values():
                try:
                    stager.add(part)
                except Exception as exc:  # noqa: BLE001 - a stager's surprise costs speed, not the run
                    stager.gave_up = stager.gave_up or f"staging failed: {exc}"
            fault_point("part_staged")

    def _checkpoint_if_asked(self) -> None:
        """Commit the checkpoint the script waits in, if it wrote one, and answer it. A
        checkpoint that fails, or comes after an error, is answered with the error (and raises)."""
        number = self._markers.last + 1
        try:
            marker = self._markers.next()
            if marker is None:
                return
            if self._error is not None:
                raise self._error
            self._take(final=False)  # its parts were complete before its marker was written
            before = self.last_checkpoint.records if self.last_checkpoint is not None else 0
            if marker.records < before:
                raise CheckpointError(f"checkpoint {number} counts fewer records than the one before it")
            if len(self.collector.parts) != marker.parts:
                raise CheckpointError(
                    f"checkpoint {number} names {marker.parts} spool parts, the spool holds "
                    f"{len(self.collector.parts)}: were records written while it was committing (another thread)?")
            files = self.collector.parts[self.committed:marker.parts]
            for stager in self.stagers.values():
                stager.script_ended()  # the script waits: staging may use every core
            self._on_checkpoint(marker, files, self.stagers, self.load_type, self.last_checkpoint)
        except Exception as exc:
            self.checkpoint_error = self.checkpoint_error or exc
            with suppress(Exception):
                self._markers.answer(number, f"error: {exc}")
            raise
        self.committed, self.last_checkpoint = marker.parts, marker
        if self.load_type == "truncate_insert":
            self.load_type = "incremental"  # the table was replaced: the rest of the run appends
        self._markers.answer(marker.number, "ok")
        self._renew_stagers()

    def _stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def halt(self) -> None:
        """After the script failed: a checkpoint being committed ends first."""
        self._stop()

    def finish(self) -> list[Path]:
        """After the script succeeded: the remaining parts, then every part since the last
        checkpoint, in order."""
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
        return list(self.collector.parts[self.committed:])

    def close(self) -> None:
        self._stop()
        for stager in self.stagers.values():
            stager.close()
        for path in self._dirs:
            shutil.rmtree(path, ignore_errors=True)


class _Undecided(Exception):
    """This process cannot say how the run ended, so it records nothing and announces nothing:
    every destination holds the run and the store could not record that it succeeded (recovery
    finishes it), or another process settled the run meanwhile."""


def _fail(run_id: str, status: str, error: str | None, error_line: int | None = None, **values) -> None:
    with session_scope() as session:
        run = session.get(Run, run_id)
        for key, value in values.items():
            setattr(run, key, value)
        finish(session, run, status, error, error_line)


def _end(run_id: str, log: _RunLog | None, status: str, error: str | None, error_line: int | None = None,
         **values) -> None:
    """The run's error path: record how it ended. Never raises: when the store cannot take it
    (the store may be what failed), the run's log and the process's log say so, and the run
    stays active, for recovery to settle once this process has gone."""
    _close_log(log, status, error)
    try:
        _fail(run_id, status, error, error_line, **values)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logger.error("run %s ended (%s: %s) but the store could not record it: %s", run_id, status, error, exc)
        if log is not None:
            with suppress(Exception):
                log.system(f"the store could not record this run's end ({status}): {exc}")


def _disk_full_said(exc: Exception) -> str:
    """A load's error, with a full disk said in plain words first (the driver's own words,
    'No space left on device' or 'could not extend file', name the file)."""
    text = str(exc)
    full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    if full or "No space left on device" in text or "disk full" in text.lower():
        return f"the disk is full: {text}"
    return text


def _close_log(log: _RunLog | None, status: str, error: str | None) -> None:
    """The log's last line says how the run ended, as a succeeded run's does; closed before
    the run's end is recorded, so that a run seen ended has its whole log in the store."""
    if log is not None:
        with suppress(Exception):
            log.system(f"run {status}: {error}" if error else f"run {status}")
        with suppress(Exception):
            log.close()


def _finished(run_id: str, publish: bool = True) -> Run:
    """The run as it ended, told to the bus; never raises (see _end)."""
    try:
        return finished(run_id) if publish else get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - the store may be what failed
        logger.error("run %s: its end could not be read from the store: %s", run_id, exc)
        return Run(id=run_id, feed_name="", status="unknown",
                   error=f"the run's end could not be read from the store: {exc}")


def holding(destinations: Callable, names: list[str], table: str, run_id: str) -> tuple[list[str], list[str], dict]:
    """Which destinations hold the run by their ledgers, which do not, and those that could
    not tell (name -> the error)."""
    held, missing, unknown = [], [], {}
    for name in names:
        try:
            (held if destinations(name).has_run(table, run_id) else missing).append(name)
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            unknown[name] = f"{type(exc).__name__}: {exc}"
    return held, missing, unknown


def counted(pending: dict, results: dict, destinations: Callable) -> tuple[int, dict]:
    """The records loaded and each destination's result, for a run every destination holds:
    a destination whose result was not recorded (its process died right after its COMMIT)
    is counted from the spool."""
    results = dict(results)
    for name in pending["destinations"]:
        if name not in results:
            location = ""
            with suppress(Exception):
                location = destinations(name).describe_target(pending["table"])
            results[name] = {"rows": pending["records_written"], "skipped": False, "location": location,
                             "rejected": 0, "counted_from": "spool"}
    return max((r["rows"] for r in results.values()), default=0), results


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def partial_commit_error(held: list[str], missing: list[str], unknown: dict, cause: str,
                         ledger: str | None = None) -> str:
    """The error of a run that some of its destinations hold and others do not: which is which,
    and what it means for the next run (ledger: a checkpoint's id, when it was one)."""
    parts = [f"{cause}; the destinations that hold this run (its rows and ledger row): {_names(held)}"]
    if missing:
        parts.append(f"that do not: {_names(missing)}")
    if unknown:
        parts.append("that could not be asked: " + ", ".join(f"{n} ({e})" for n, e in unknown.items()))
    rows = f"rows with the _tributary_run_id {ledger}" if ledger else "rows with this _tributary_run_id"
    return "; ".join(parts) + (". The feed's state did not advance: the next run fetches these records again, "
                               f"and {_names(held)} will then hold them twice unless they are removed from it "
                               f"({rows})")


def _closing_log_first(log: _RunLog, saved: str) -> Callable:
    """complete_run, after the log's last line and its close (see _close_log). Counted as
    complete_run counts: the run's checkpoints' rows and the final commit's."""

    def record(run_id: str, pending: dict, loaded: int, results: dict) -> None:
        if not log.closed:
            total = loaded + sum(c["loaded"] for c in get_run(run_id).checkpoints or [])
            log.system(f"run succeeded: {total} records loaded; state {saved}")
            log.close()
        complete_run(run_id, pending, loaded, results)

    return record


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
        recorded on the run (see _end for a store that cannot record them). While it executes,
        its heartbeat renews this process's lease on it (core/heartbeat.py)."""
        heartbeat = Heartbeat(run_id, on_lost=lambda lost: self.cancel(events.CancelRequested(lost))).start()
        try:
            return self._execute(run_id)
        finally:
            heartbeat.stop()

    def _execute(self, run_id: str) -> Run:
        settings = self._settings()
        if not _claim(run_id):
            return get_run(run_id)  # cancelled before it started, or executed elsewhere
        try:
            run, feed, job, resumes = _prepare(run_id, settings)
            # A worker ships the log to the store as it grows: the app may be on another machine.
            path = Path(run.log_path)
            log = _RunLog(path, shipper=LogShipper(run.id, feed.id, path) if ships() else None)
        except Exception as exc:  # noqa: BLE001 - e.g. secrets that no longer decrypt
            _end(run_id, None, "failed", f"could not prepare the run: {exc}")
            return _finished(run_id)
        staging, undecided = None, False
        try:
            log.system(f"run {run.id} of feed {feed.name} started ({run.trigger}, runner {settings.runner})")
            load_type = feed.load_type
            options = run.options or {}
            if options.get("full_refresh"):
                log.system("full refresh: from {}, replacing the table when the run commits")
                load_type = "truncate_insert"
            elif "state" in options:
                log.system("backfill from a given state; " + ("it becomes the feed's state if the run succeeds"
                           if options.get("commit_state") else "the feed's state stays as it is"))
            if resumes is not None:
                log.system(f"resuming from checkpoint {resumes} of a run that did not finish"
                           + ("; Truncate and Insert: this run appends to the table that run began replacing"
                              if load_type == "truncate_insert" else ""))
                load_type = "incremental" if load_type == "truncate_insert" else load_type

            def on_checkpoint(marker, files, stagers, load_type, previous):
                self._checkpoint(run, feed, marker, files, stagers, load_type, previous, log)

            staging = _Staging(run, feed, job, settings, log, self._destinations, load_type, on_checkpoint)
            outcome = self._run_script(run, job, log, settings, on_started=staging.start)
            if outcome.requests_line():
                log.system(outcome.requests_line())
                with suppress(Exception):  # the run history's counts; the log line has them too
                    _update(run.id, request_counts=dict(outcome.request_counts))
            if not outcome.ok or _cancel_requested(run.id):
                staging.halt()  # a checkpoint being committed ends first
                if isinstance(staging.checkpoint_error, _Undecided):
                    raise staging.checkpoint_error
            if not outcome.ok:
                status = "cancelled" if outcome.status == "cancelled" else "failed"
                error = outcome.error
                if staging.checkpoint_error is not None and status == "failed":
                    error, outcome.error_line = str(staging.checkpoint_error), None
                log.system(f"script {status}: {outcome.error}")
                _end(run.id, log, status, error, outcome.error_line, records_written=outcome.records)
                return _finished(run.id)
            log.system(f"script finished: {outcome.records} records in {outcome.duration_s:.2f} s")
            if _cancel_requested(run.id):
                _end(run.id, log, "cancelled", "cancelled by a user before loading", records_written=outcome.records)
                return _finished(run.id)
            files = staging.finish()
            self._commit(run, feed, outcome, files, staging.stagers, log, staging.load_type, staging.last_checkpoint)
        except _Undecided as exc:
            logger.error("run %s: %s", run.id, exc)
            with suppress(Exception):
                log.system(str(exc))
            undecided = True
        except Exception as exc:  # noqa: BLE001 - recorded on the run, state untouched
            _end(run.id, log, "failed", str(exc))
        finally:
            with suppress(Exception):
                if staging is not None:
                    staging.close()
            with suppress(Exception):
                log.close()
            shutil.rmtree(job.work_dir, ignore_errors=True)
        return _finished(run.id, publish=not undecided)  # a pending run has not finished

    def _commit(self, run: Run, feed: Feed, outcome: ScriptOutcome, files: list[Path], stagers: dict[str, Stager],
                log: _RunLog, load_type: str | None = None, last: Checkpoint | None = None) -> None:
        """The two-phase commit (see the module docstring): of the parts after the last
        checkpoint, if the run made any."""
        before = last.records if last is not None else 0
        options = run.options or {}
        keeps_state = "state" in options and not options.get("commit_state")
        pending = pending_outcome(None if keeps_state else outcome.metadata, outcome.records - before, list(feed.destinations), feed.name,
                                  files, load_type or feed.load_type, list(feed.primary_key), feed.max_rejected_ratio,
                                  records_before=before, schema_policy=feed.schema_policy)
        if not _still_ours(run.id, status="loading", loading_at=self._clock(), records_written=outcome.records,
                           pending_outcome=pending):
            # Recovery judged this process dead (its heartbeat went stale) and settled the run:
            # loading now would load what the run's retry loads too.
            raise _Undecided(f"run {run.id} was settled by another process while it ran; nothing loaded")
        loaded, results = self._load_pending(run, feed, pending, run.id, stagers, log)
        saved = "saved" if outcome.metadata is not None else "unchanged"
        self._complete(run.id, pending, loaded, results, log, _closing_log_first(log, saved))
        fault_point("store_committed")

    def _checkpoint(self, run: Run, feed: Feed, marker: Checkpoint, files: list[Path], stagers: dict[str, Stager],
                    load_type: str, previous: Checkpoint | None, log: _RunLog) -> None:
        """Commit a checkpoint, as a run is committed, under its own ledger id; the run goes on."""
        before = previous.records if previous is not None else 0
        ledger = checkpoint_id(run.id, marker.number)
        pending = pending_outcome(marker.state, marker.records - before, list(feed.destinations), feed.name, files,
                                  load_type, list(feed.primary_key), feed.max_rejected_ratio, ledger_id=ledger,
                                  checkpoint=marker.number, records_before=before, schema_policy=feed.schema_policy)
        _update(run.id, pending_outcome=pending)
        log.system(f"checkpoint {marker.number}: committing {marker.records - before} records")
        loaded, results = self._load_pending(run, feed, pending, ledger, stagers, log)
        self._complete(run.id, pending, loaded, results, log, record_checkpoint)
        log.system(f"checkpoint {marker.number} committed: {marker.records} records written so far; state saved")
        fault_point("checkpoint_committed")

    def _load_pending(self, run: Run, feed: Feed, pending: dict, ledger: str, stagers: dict[str, Stager],
                      log: _RunLog) -> tuple[int | None, dict | None]:
        """Phase one's loads: the records loaded and the results, or None when every
        destination's ledger holds the commit after a load failed (counted by _complete)."""
        files = [Path(f) for f in pending["spool"]]
        try:
            loaded, results = self._load(run, feed, ledger, pending["records_written"], files, pending["load_type"],
                                         stagers, log)
        except Exception as exc:  # noqa: BLE001 - the ledgers tell what was committed
            held, missing, unknown = holding(self._destinations, pending["destinations"], feed.name, ledger)
            if missing or unknown:
                if held or unknown:
                    raise TributaryError(partial_commit_error(held, missing, unknown, str(exc), ledger)) from exc
                raise
            # Every destination holds the commit: what failed came after its COMMIT (a
            # connection lost while acknowledging it): it is committed.
            log.system(f"{exc}; but every destination's ledger holds the run: it is committed")
            return None, None
        return loaded, results

    def _complete(self, run_id: str, pending: dict, loaded: int | None, results: dict | None, log: _RunLog,
                  record: Callable = complete_run) -> int:
        """Phase two, once every destination holds the commit; the records loaded. A store that
        cannot record it is tried again for a while; then the run stays pending (never
        'failed': its rows are in the destinations), for recovery to finish once this process
        has gone."""
        for wait in (*STORE_RETRY_WAITS_S, None):
            try:
                if loaded is None:
                    loaded, results = counted(pending, get_run(run_id).destination_results or {}, self._destinations)
                record(run_id, pending, loaded, results)
                return loaded
            except Exception as exc:  # noqa: BLE001 - see the docstring
                if wait is None:
                    raise _Undecided(
                        f"every destination holds this run, but the store could not record it ({exc}): it stays "
                        "pending until this process has ended; then the next start of the app or of a CLI "
                        "command finishes its commit"
                    ) from exc
                with suppress(Exception):
                    log.system(f"the store could not record the run's commit ({exc}); trying again in {wait} s")
                time.sleep(wait)

    def _run_script(self, run: Run, job: ScriptJob, log: _RunLog, settings: Settings,
                    on_started: Callable[[], None] = lambda: None) -> ScriptOutcome:
        handle = self._runners(settings.runner, settings).start(job, log)
        on_started()
        fault_point("script_running")
        with self._lock:
            self._handles[run.id] = handle
        with suppress(Exception):  # recovery's means to kill it if this process dies; best effort
            _update(run.id, sandbox_ref=handle.sandbox_ref())
        done = threading.Event()
        watcher = threading.Thread(target=_watch_for_cancel, args=(run.id, handle, done), daemon=True)
        watcher.start()
        try:
            return handle.wait()
        finally:
            done.set()
            with self._lock:
                self._handles.pop(run.id, None)

    def _load(self, run: Run, feed: Feed, ledger: str, records: int, files: list[Path], load_type: str,
              stagers: dict[str, Stager], log: _RunLog) -> tuple[int, dict]:
        """Load the spool into every destination; each commits its rows and its ledger row on its
        own, idempotently (a destination already holding the ledger id skips it)."""
        results, loaded = {}, 0
        for name in feed.destinations:
            destination = self._destinations(name)
            target = destination.describe_target(feed.name).replace("<run id>", ledger)
            log.system(f"loading {records} records into {target}")
            request = LoadRequest(table=feed.name, files=files, load_type=load_type, run_id=ledger,
                                  loaded_at=self._clock(), primary_key=list(feed.primary_key),
                                  max_rejected_ratio=feed.max_rejected_ratio, staged=stagers.get(name),
                                  schema_policy=feed.schema_policy)
            try:
                result = destination.load(request)
            except Exception as exc:  # noqa: BLE001 - any driver error fails the run, clearly
                raise TributaryError(f"loading into {name} failed: {_disk_full_said(exc)}") from exc
            fault_point("destination_committed")
            results[name] = {"rows": result.rows, "skipped": result.skipped, "location": result.location,
                             "rejected": result.rejected}
            _update(run.id, destination_results=dict(results))  # for recovery's counts, should this process die
            loaded = max(loaded, result.rows)
            entry = record_change(run.id, name, result)
            for change in change_lines({**entry, "rejected": 0}) if result.schema_diff else result.schema_changes:
                log.system(f"{name}: {change}")
            if result.rejected:
                log.system(f"{name}: {result.rejected} rows rejected (see {feed.name}__rejected)")
            log.system(f"{name}: {'already held this run' if result.skipped else f'{result.rows} rows committed'}")
        return loaded, results
