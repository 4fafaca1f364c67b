"""Running feeds: test a script, start/execute/cancel a run, read run history and logs.

A run goes queued -> running -> loading -> succeeded | failed | cancelled. The script's
records go to a spool on disk; each destination loads the spool in a transaction of its own,
tagged with the run id; only when every destination has committed does the metadata the
script saved become the feed's state. Anything that fails before that leaves the state and
the destinations as they were.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy.exc import IntegrityError
from sqlmodel import select, update

from core import events
from core.connections import get_connection, get_connection_by_id, sandbox_material
from common.errors import Conflict, NotFound, TributaryError, ValidationError
from storage.models import ActiveRun, Feed, FeedState, Run, utcnow
from common.settings import Settings, get_settings
from core.state import current_state_in
from core.validation import dependency_problems, raise_if
from common.process import died, worker_id
from runners import get_runner
from runners.base import ScriptJob, ScriptOutcome
from runners.parts import PartCollector
from storage.db import session_scope
from storage.destinations import get_destination
from storage.destinations.base import LoadRequest, Stager

ACTIVE_STATUSES = ("queued", "running", "loading")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
CANCEL_POLL_S = 0.5
PART_POLL_S = 0.01  # how soon a completed spool part reaches the destinations' stagers
_handles: dict[str, object] = {}  # run id -> RunHandle, for cancelling in this process
_handles_lock = threading.Lock()


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]


# ---------------------------------------------------------------- test mode


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class, despite the name
    ok: bool
    status: str
    records: list[dict]
    count: int
    metadata: dict | None
    duration_s: float
    logs: list[str]
    error: str | None = None
    error_line: int | None = None


@dataclass
class TestRequest:
    __test__ = False
    script: str
    connection: str | None = None
    dependencies: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    run_to_completion: bool = False
    timeout_s: int | None = None
    memory_limit_mb: int | None = None
    network: bool = True


def read_preview(files: list[Path], limit: int) -> list[dict]:
    records: list[dict] = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                records.append(json.loads(line))
                if len(records) >= limit:
                    return records
    return records


def test_script(request: TestRequest, on_log: Callable[[str], None] | None = None,
                settings: Settings | None = None) -> TestResult:
    """Run a script exactly as a run would, but stop after the preview's records and write
    nothing to any destination or state."""
    settings = settings or get_settings()
    raise_if(dependency_problems(request.dependencies))
    conn = get_connection(request.connection) if request.connection else None
    material, secrets = sandbox_material(conn)
    logs: list[str] = []

    def sink(line: str) -> None:
        logs.append(line)
        if on_log:
            on_log(line)

    work_dir = settings.work_root / f"test-{uuid.uuid4().hex[:12]}"
    job = ScriptJob(
        run_id=work_dir.name, feed_name="test", script=request.script, work_dir=work_dir,
        dependencies=request.dependencies, metadata=request.metadata, connection=material,
        record_limit=None if request.run_to_completion else settings.preview_records,
        timeout_s=request.timeout_s or settings.test_timeout_s,
        memory_limit_mb=request.memory_limit_mb or settings.memory_limit_mb, secrets=secrets,
        network=request.network,
    )
    try:
        try:
            outcome = get_runner(settings.runner, settings).start(job, sink).wait()
        except TributaryError as exc:
            return TestResult(False, "failed", [], 0, None, 0.0, logs, error=str(exc))
        preview = read_preview(outcome.spool_files(), settings.preview_records)
        return TestResult(
            ok=outcome.ok, status="succeeded" if outcome.ok else "failed", records=preview,
            count=outcome.records, metadata=outcome.metadata, duration_s=round(outcome.duration_s, 3),
            logs=logs, error=outcome.error, error_line=outcome.error_line,
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def test_feed(name: str, run_to_completion: bool = False, on_log=None) -> TestResult:
    from core.feeds import connection_name, get_feed

    feed = get_feed(name)
    with session_scope() as session:
        state = current_state_in(session, feed.id)
    request = TestRequest(
        script=feed.script, connection=connection_name(feed), dependencies=list(feed.dependencies),
        metadata=state, run_to_completion=run_to_completion, timeout_s=feed.timeout_s,
        memory_limit_mb=feed.memory_limit_mb, network=feed.network,
    )
    return test_script(request, on_log)


# ---------------------------------------------------------------- starting and cancelling


def _feed_by_name(session, name: str) -> Feed:
    feed = session.exec(select(Feed).where(Feed.name == name)).first()
    if feed is None:
        raise NotFound(f"feed {name!r} does not exist")
    return feed


def create_run(feed_name: str, trigger: str = "manual", payload: dict | None = None,
               parent_run_id: str | None = None, attempt: int = 1, not_before: datetime | None = None,
               scheduled_for: datetime | None = None) -> Run:
    """Queue a run, claiming the feed's single active-run slot (refused if taken)."""
    settings = get_settings()
    run_id = new_run_id()
    try:
        with session_scope() as session:
            feed = _feed_by_name(session, feed_name)
            active = session.get(ActiveRun, feed.id)
            if active is not None:
                raise Conflict(f"feed {feed_name!r} already has an active run ({active.run_id})")
            session.add(ActiveRun(feed_id=feed.id, run_id=run_id))
            run = Run(
                id=run_id, feed_id=feed.id, feed_name=feed.name, trigger=trigger,
                log_path=str(settings.logs_dir / f"{run_id}.log"), parent_run_id=parent_run_id,
                attempt=attempt, trigger_payload=payload, not_before=not_before, scheduled_for=scheduled_for,
            )
            session.add(run)
            session.flush()
            return run
    except IntegrityError:
        # Another process claimed the slot between our check and our insert.
        raise Conflict(f"feed {feed_name!r} already has an active run") from None


def start_run(feed_name: str, trigger: str = "manual", payload: dict | None = None,
              wait: bool = False) -> Run:
    """Queue a run and execute it: in this thread when wait=True, else through the dispatcher
    (which keeps to the cap on concurrent runs)."""
    run = create_run(feed_name, trigger, payload)
    if wait:
        return execute_run(run.id)
    from core import dispatch

    dispatch.submit(run.id)
    return run


def cancel_run(run_id: str) -> Run:
    """Ask a run to stop. A queued run is cancelled at once; a running one is killed by the
    process executing it (this one or another, which polls the flag)."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFound(f"run {run_id!r} does not exist")
        if run.status in FINAL_STATUSES:
            raise Conflict(f"run {run_id} has already ended ({run.status})")
        # Conditional, like the claim in execute_run: whichever comes first wins, so a run that
        # a worker has just claimed is killed by its watcher instead of being marked here.
        session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
        cancelled_while_queued = session.execute(
            update(Run).where(Run.id == run_id, Run.status == "queued").values(status="cancelled")
        ).rowcount == 1
        if cancelled_while_queued:
            session.refresh(run)
            _finish(session, run, "cancelled", "cancelled by a user before it started")
    with _handles_lock:
        handle = _handles.get(run_id)
    if handle is not None:
        handle.cancel()
    return _finished(run_id) if cancelled_while_queued else get_run(run_id)


# ---------------------------------------------------------------- executing


class _RunLog:
    """Appends a run's output to its log file as it comes, flushed line by line so that a
    reader (the UI, `logs --follow`) sees it live."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._file.write(line + "\n")

    def system(self, message: str) -> None:
        self(f"[tributary {datetime.now(timezone.utc).strftime('%H:%M:%S')}] {message}")

    def close(self) -> None:
        self._file.close()


def _finish(session, run: Run, status: str, error: str | None = None, error_line: int | None = None) -> None:
    run.status = status
    run.error = error
    run.error_line = error_line
    run.finished_at = utcnow()
    if run.state_after is None:
        run.state_after = run.state_before
    active = session.get(ActiveRun, run.feed_id)
    if active is not None and active.run_id == run.id:
        session.delete(active)
    session.add(run)


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

    def __init__(self, run: Run, feed: Feed, job: ScriptJob, settings: Settings, log: _RunLog):
        self._feed, self._settings, self._log, self._run_id = feed, settings, log, run.id
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
            stager = get_destination(name).stager(self._feed.load_type, work_dir)
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


def _run_script(run: Run, job: ScriptJob, log: _RunLog, settings: Settings,
                on_started: Callable[[], None] = lambda: None) -> ScriptOutcome:
    handle = get_runner(settings.runner, settings).start(job, log)
    on_started()
    with _handles_lock:
        _handles[run.id] = handle
    done = threading.Event()
    watcher = threading.Thread(target=_watch_for_cancel, args=(run.id, handle, done), daemon=True)
    watcher.start()
    try:
        return handle.wait()
    finally:
        done.set()
        with _handles_lock:
            _handles.pop(run.id, None)


def _load(run: Run, feed: Feed, outcome: ScriptOutcome, files: list[Path], stagers: dict[str, Stager],
          log: _RunLog) -> tuple[int, dict]:
    """Load the spool into every destination; each commits on its own, idempotently."""
    results, loaded = {}, 0
    for name in feed.destinations:
        destination = get_destination(name)
        log.system(f"loading {outcome.records} records into {destination.describe_target(feed.name)}")
        request = LoadRequest(table=feed.name, files=files, load_type=feed.load_type, run_id=run.id,
                              loaded_at=utcnow(), primary_key=list(feed.primary_key),
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
        _finish(session, run, "succeeded")


def _fail(run_id: str, status: str, error: str | None, error_line: int | None = None, **values) -> None:
    with session_scope() as session:
        run = session.get(Run, run_id)
        for key, value in values.items():
            setattr(run, key, value)
        _finish(session, run, status, error, error_line)


def execute_run(run_id: str) -> Run:
    """Execute a queued run to its end. Never raises for the run's own failures: they are
    recorded on the run."""
    settings = get_settings()
    if not _claim(run_id):
        return get_run(run_id)  # cancelled before it started, or executed elsewhere
    try:
        run, feed, job = _prepare(run_id, settings)
    except Exception as exc:  # noqa: BLE001 - e.g. secrets that no longer decrypt
        _fail(run_id, "failed", f"could not prepare the run: {exc}")
        return _finished(run_id)
    log = _RunLog(Path(run.log_path))
    log.system(f"run {run.id} of feed {feed.name} started ({run.trigger}, runner {settings.runner})")
    staging = None
    try:
        staging = _Staging(run, feed, job, settings, log)
        outcome = _run_script(run, job, log, settings, on_started=staging.start)
        if not outcome.ok:
            status = "cancelled" if outcome.status == "cancelled" else "failed"
            log.system(f"script {status}: {outcome.error}")
            _fail(run.id, status, outcome.error, outcome.error_line, records_written=outcome.records)
            return _finished(run.id)
        log.system(f"script finished: {outcome.records} records in {outcome.duration_s:.2f} s")
        if _cancel_requested(run.id):
            _fail(run.id, "cancelled", "cancelled by a user before loading", records_written=outcome.records)
            return _finished(run.id)
        files = staging.finish()
        _update(run.id, status="loading", loading_at=utcnow(), records_written=outcome.records)
        loaded, results = _load(run, feed, outcome, files, staging.stagers, log)
        _commit(run.id, feed.id, outcome, loaded, results)
        log.system(f"run succeeded: {loaded} records loaded; state {'saved' if outcome.metadata is not None else 'unchanged'}")
    except Exception as exc:  # noqa: BLE001 - recorded on the run, state untouched
        log.system(f"run failed: {exc}")
        _fail(run.id, "failed", str(exc))
    finally:
        if staging is not None:
            staging.close()
        log.close()
        shutil.rmtree(job.work_dir, ignore_errors=True)
    return _finished(run.id)


def _finished(run_id: str) -> Run:
    run = get_run(run_id)
    events.run_finished(run)
    return run


def recover_interrupted_runs() -> list[str]:
    """Runs left active by a process of this host that no longer exists are marked failed,
    freeing their feeds. Called at start-up. A run that died with its process has failed like
    any other: its watchers hear of it and the feed's retries apply."""
    recovered = []
    with session_scope() as session:
        for run in session.exec(select(Run).where(Run.status.in_(ACTIVE_STATUSES))).all():
            if not died(run.worker):
                continue
            # Conditional, like _claim: of two processes starting at once, one recovers the run
            # (and notifies its watchers, and retries it).
            claim = update(Run).where(Run.id == run.id, Run.status == run.status).values(status="failed")
            if session.execute(claim).rowcount != 1:
                continue
            _finish(session, run, "failed", "interrupted: the process running it stopped")
            recovered.append(run.id)
    for run_id in recovered:
        remove_work_dirs(run_id)
        _finished(run_id)
    return recovered


def remove_work_dirs(run_id: str) -> None:
    """A run's work dir, its taken spool parts and its stagers' files (named after the run)."""
    work_root = get_settings().work_root
    if work_root.exists():
        for path in work_root.glob(f"{run_id}*"):
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- history and logs


def get_run(run_id: str) -> Run:
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFound(f"run {run_id!r} does not exist")
        return run


def due_queued_runs(now: datetime, limit: int = 20) -> list[Run]:
    """Queued runs whose time has come, oldest first: the dispatcher's work list."""
    with session_scope() as session:
        query = (
            select(Run)
            .where(Run.status == "queued", (Run.not_before.is_(None)) | (Run.not_before <= now))
            .order_by(Run.created_at)
            .limit(limit)
        )
        return list(session.exec(query).all())


def list_runs(feed_name: str | None = None, limit: int = 50, status: str | None = None) -> list[Run]:
    with session_scope() as session:
        query = select(Run).where(Run.kind == "run")
        if feed_name:
            query = query.where(Run.feed_name == feed_name)
        if status:
            query = query.where(Run.status == status)
        return list(session.exec(query.order_by(Run.created_at.desc()).limit(limit)).all())


def read_log(run_id: str, offset: int = 0) -> tuple[str, int]:
    """The run's log from a byte offset, and the offset to continue from (for tailing)."""
    run = get_run(run_id)
    path = Path(run.log_path or "")
    if not path.exists():
        return "", offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    return data.decode("utf-8", errors="replace"), offset + len(data)


def wait_for_run(run_id: str, timeout_s: float = 600, poll_s: float = 0.2) -> Run:
    deadline = time.monotonic() + timeout_s
    while True:
        run = get_run(run_id)
        if run.status in FINAL_STATUSES or time.monotonic() > deadline:
            return run
        time.sleep(poll_s)


def run_view(run: Run) -> dict:
    """A run as the CLI's --json and the UI show it."""
    duration = None
    if run.started_at and run.finished_at:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return {
        "id": run.id, "feed": run.feed_name, "status": run.status, "trigger": run.trigger,
        "created_at": run.created_at.isoformat(), "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None, "duration_s": duration,
        "records_written": run.records_written, "records_loaded": run.records_loaded, "error": run.error,
        "error_line": run.error_line, "state_before": run.state_before, "state_after": run.state_after,
        "destinations": run.destination_results or {},
        "attempt": run.attempt, "parent_run_id": run.parent_run_id,
        "notifications": watchers.delivery_views(run.id),
    }


def raise_for_invalid_payload(payload) -> None:
    if payload is not None and not isinstance(payload, dict):
        raise ValidationError.single("payload", "must be a JSON object")


# Functions named test_* are services, not pytest tests, when a test module imports them.
test_script.__test__ = False
test_feed.__test__ = False

from core import retries  # noqa: E402,F401  (registers the retry listener with core.events)
from core import watchers  # noqa: E402,F401  (registers the watchers listener with core.events)
