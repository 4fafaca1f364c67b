"""Run records: queue, cancel, finish and read runs, and their logs.

A run goes queued -> running -> loading -> succeeded | failed | cancelled. While it loads, its
`pending_outcome` holds what it will commit (the two-phase commit of core/execution.py); a run
leaves `loading` only through complete_run or finish, which clear it. This module keeps
the records and their one active-run slot per feed; executing a run is core/execution.py's,
deciding when a queued run executes is the dispatcher's (core/services/dispatcher.py). It tells
them through the event bus (core/events.py): RunQueued when a run is queued, RunFinished when
one ends, CancelRequested when someone asks a running one to stop.

A run whose script calls metadata.checkpoint() commits in steps while it runs: each
checkpoint has a pending outcome of its own (with its ledger id, checkpoint_id) and ends in
record_checkpoint, which makes its state the feed's current one and adds it to
`runs.checkpoints`; the run stays running. Its counts and destination results are the
whole run's: the checkpoints' and the final commit's together.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import select, update

from common.errors import Conflict, NotFound, ValidationError
from common.settings import get_settings
from core import events
from core.log_chunks import read_stored, stored_size
from core.run_log import read_tail, tail_text
from core.state import checked_state
from storage.lookups import feed_by_name
from core.watchers import delivery_views
from common.process import worker_fields
from storage.db import session_scope
from storage.models import ActiveRun, FeedState, Run, utcnow

ACTIVE_STATUSES = ("queued", "running", "loading")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]


# ---------------------------------------------------------------- starting and cancelling


@dataclass(frozen=True)
class RunOptions:
    """How one run differs from the feed's usual run.
    - `state`: start from this state instead of the current one (a backfill, or a replay from an
      edited or older state); the state it ends with becomes current only with `commit_state`.
    - `full_refresh`: start from {} and replace the table when the run commits, whatever the
      feed's load type (readers see the old contents until then); its end state becomes current.
    Checkpoints are not taken in such runs: the first one would make a state current."""

    state: dict | None = None
    commit_state: bool = False
    full_refresh: bool = False

    @classmethod
    def of(cls, stored: dict | None) -> "RunOptions | None":
        if not stored:
            return None
        return cls(state=stored.get("state"), commit_state=bool(stored.get("commit_state")),
                   full_refresh=bool(stored.get("full_refresh")))

    def as_dict(self) -> dict | None:
        if self.state is None and not self.full_refresh:
            return None
        if self.state is not None and self.full_refresh:
            raise ValidationError([("state", "a full refresh starts from {}: give one or the other")])
        if self.full_refresh:
            return {"full_refresh": True}
        return {"state": checked_state(self.state), "commit_state": self.commit_state}


def create_run(feed_name: str, trigger: str = "manual", payload: dict | None = None,
               parent_run_id: str | None = None, attempt: int = 1, not_before: datetime | None = None,
               scheduled_for: datetime | None = None, announce: bool = True,
               options: RunOptions | None = None) -> Run:
    """Queue a run, claiming the feed's single active-run slot (refused if taken), and announce
    it (RunQueued) unless the caller executes it itself."""
    chosen = options.as_dict() if options is not None else None
    settings = get_settings()
    run_id = new_run_id()
    try:
        with session_scope() as session:
            feed = feed_by_name(session, feed_name)
            active = session.get(ActiveRun, feed.id)
            if active is not None:
                raise Conflict(f"feed {feed_name!r} already has an active run ({active.run_id})")
            session.add(ActiveRun(feed_id=feed.id, run_id=run_id))
            run = Run(
                id=run_id, feed_id=feed.id, feed_name=feed.name, trigger=trigger,
                log_path=str(settings.logs_dir / f"{run_id}.log"), parent_run_id=parent_run_id,
                attempt=attempt, trigger_payload=payload, not_before=not_before, scheduled_for=scheduled_for,
                options=chosen,
            )
            session.add(run)
            session.flush()
    except IntegrityError:
        # Another process claimed the slot between our check and our insert.
        raise Conflict(f"feed {feed_name!r} already has an active run") from None
    if announce:
        events.bus.publish(events.RunQueued(run.id))
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
            finish(session, run, "cancelled", "cancelled by a user before it started")
    if cancelled_while_queued:
        return finished(run_id)
    events.bus.publish(events.CancelRequested(run_id))
    return get_run(run_id)


def finish(session, run: Run, status: str, error: str | None = None, error_line: int | None = None) -> None:
    """Give a run its final status and free its feed's active-run slot, in the caller's
    transaction."""
    run.status = status
    run.error = error
    run.error_line = error_line
    run.finished_at = utcnow()
    run.pending_outcome = None  # reconciled: nothing of this run is left to commit
    if run.state_after is None:
        run.state_after = run.state_before
    if run.checkpoints and status != "succeeded":  # what its checkpoints committed stays
        run.records_loaded = sum(c["loaded"] for c in run.checkpoints)
        run.destination_results = with_checkpoints(run.checkpoints, {})
    active = session.get(ActiveRun, run.feed_id)
    if active is not None and active.run_id == run.id:
        session.delete(active)
    session.add(run)


def pending_outcome(state: dict | None, records_written: int, destinations: list[str], table: str,
                    spool: list[Path], load_type: str, primary_key: list[str], max_rejected_ratio: float,
                    ledger_id: str | None = None, checkpoint: int | None = None, records_before: int = 0,
                    schema_policy: str = "evolve") -> dict:
    """What a run about to commit records first (phase one of the two-phase commit): all a
    live process needs to finish the commit, or fail it, from the destinations' ledgers.
    A checkpoint's names its number and its ledger id; records_written counts the records of
    this commit only, records_before those its run's checkpoints committed before it."""
    return {
        "state": state, "state_saved": state is not None, "records_written": records_written,
        "destinations": list(destinations), "table": table, "spool": [str(path) for path in spool],
        "load_type": load_type, "primary_key": list(primary_key), "max_rejected_ratio": max_rejected_ratio,
        "ledger_id": ledger_id, "checkpoint": checkpoint, "records_before": records_before,
        "schema_policy": schema_policy,
    }


def checkpoint_id(run_id: str, number: int) -> str:
    """The ledger id of a run's checkpoint: its rows' _tributary_run_id, and its feed_states row's run."""
    return f"{run_id}-c{number}"


def ledger_id(run_id: str, pending: dict) -> str:
    """The id the destinations' ledgers hold a pending commit under."""
    return pending.get("ledger_id") or run_id


def with_checkpoints(checkpoints: list | None, results: dict) -> dict:
    """Each destination's result for the whole run: its checkpoints' rows added to the final's."""
    totals = {name: dict(result) for name, result in results.items()}
    for checkpoint in checkpoints or []:
        for name, result in (checkpoint.get("results") or {}).items():
            total = totals.setdefault(name, {"rows": 0, "skipped": False, "location": result.get("location", ""),
                                             "rejected": 0})
            total["rows"] = total.get("rows", 0) + result.get("rows", 0)
            total["rejected"] = total.get("rejected", 0) + result.get("rejected", 0)
    return totals


def record_checkpoint(run_id: str, pending: dict, loaded: int, results: dict) -> None:
    """A checkpoint's phase two, once every destination holds it: its state becomes the
    feed's current state and the run lists it, in one store transaction. The run goes on."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        number = pending["checkpoint"]
        checkpoints = list(run.checkpoints or [])
        if any(c["number"] == number for c in checkpoints):
            return  # recorded already
        session.add(FeedState(feed_id=run.feed_id, run_id=ledger_id(run_id, pending), state=pending["state"],
                              reason="checkpoint"))
        records = pending["records_before"] + pending["records_written"]
        checkpoints.append({"number": number, "at": utcnow().isoformat(), "records": records, "loaded": loaded,
                            "state": pending["state"], "results": results})
        run.checkpoints = checkpoints
        run.state_after = pending["state"]
        run.records_written = max(run.records_written, records)
        run.records_loaded = sum(c["loaded"] for c in checkpoints)
        run.destination_results = {}  # the next commit's, as it goes (see execution's _load)
        run.pending_outcome = None
        session.add(run)


def complete_run(run_id: str, pending: dict, loaded: int, results: dict) -> None:
    """Phase two: the run succeeded, and its state (if it saved one) becomes the feed's
    current state, in one store transaction. The one place a feed's state advances after a
    run; called once every destination holds the run."""
    with session_scope() as session:
        run = session.get(Run, run_id)
        if pending["state_saved"]:
            session.add(FeedState(feed_id=run.feed_id, run_id=run_id, state=pending["state"], reason="run"))
            run.state_after = pending["state"]
        run.records_loaded = sum(c["loaded"] for c in run.checkpoints or []) + loaded
        run.records_written = pending.get("records_before", 0) + pending["records_written"]
        run.destination_results = with_checkpoints(run.checkpoints, results)
        run.pending_outcome = None
        finish(session, run, "succeeded")


def finished(run_id: str) -> Run:
    """The run as it ended, after telling the bus (watchers, retries)."""
    run = get_run(run_id)
    events.bus.publish(events.RunFinished(run))
    return run


def remove_work_dirs(run_id: str) -> None:
    """A run's work dir, its taken spool parts and its stagers' files (named after the run)."""
    work_root = get_settings().work_root
    if work_root.exists():
        for path in work_root.glob(f"{run_id}*"):
            shutil.rmtree(path, ignore_errors=True)


def remove_left_work_dirs() -> list[str]:
    """The work dirs of runs that have ended but still have them: left by a process that died
    after recording a run's end and before cleaning up. Dirs of no run, or of an active one
    (a pending run's spool is kept until it is reconciled), stay. The runs cleaned."""
    work_root = get_settings().work_root
    if not work_root.exists():
        return []
    by_run: dict[str, list[Path]] = {}
    for path in work_root.iterdir():
        by_run.setdefault(path.name.split(".", 1)[0], []).append(path)
    if not by_run:
        return []
    with session_scope() as session:
        ended = set(session.exec(select(Run.id).where(Run.id.in_(list(by_run)), Run.status.in_(FINAL_STATUSES))).all())
    for run_id in ended:
        for path in by_run[run_id]:
            shutil.rmtree(path, ignore_errors=True)
    return sorted(ended)


# ---------------------------------------------------------------- executing


# ---------------------------------------------------------------- history and logs


def get_run(run_id: str) -> Run:
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFound(f"run {run_id!r} does not exist")
        return run


def list_runs(feed_name: str | None = None, limit: int = 50, status: str | None = None) -> list[Run]:
    with session_scope() as session:
        query = select(Run).where(Run.kind == "run")
        if feed_name:
            query = query.where(Run.feed_name == feed_name)
        if status:
            query = query.where(Run.status == status)
        return list(session.exec(query.order_by(Run.created_at.desc()).limit(limit)).all())


def read_log_tail(run_id: str, max_bytes: int, offset: int = 0) -> tuple[str, int, bool]:
    """What the run's log holds past `offset`, but at most its last `max_bytes` (read from the
    end: a page never reads a large log whole): (text, the offset to continue from, whether
    bytes between `offset` and the text were skipped). From the store when the worker that
    executed the run shipped its log there (core/log_chunks.py), else from its file; the
    offsets are the same in both."""
    stored = read_stored(run_id, offset, max_bytes)
    if stored is not None:
        data, skipped, end = stored
        return tail_text(data, skipped), end, skipped
    return read_tail(Path(get_run(run_id).log_path or ""), max_bytes, offset)


def run_log_size(run_id: str) -> int:
    size = stored_size(run_id)
    if size is not None:
        return size
    path = Path(get_run(run_id).log_path or "")
    return path.stat().st_size if path.is_file() else 0


def read_log(run_id: str, offset: int = 0) -> tuple[str, int]:
    """The run's log from a byte offset, and the offset to continue from (for tailing). The
    whole rest of the log: pages use read_log_tail. From the store or the file, as there."""
    stored = read_stored(run_id, offset)
    if stored is not None:
        data, _, end = stored
        return data.decode("utf-8", errors="replace"), end
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
        "schema_changes": run.schema_changes or {},  # per destination: see core/schema_history.py
        "committing": run.pending_outcome is not None,  # its outcome recorded as pending, its commit unfinished
        "attempt": run.attempt, "parent_run_id": run.parent_run_id,
        "notifications": delivery_views(run.id),
        "checkpoints": [{"at": c["at"], "records": c["records"], "state": c["state"]} for c in run.checkpoints or []],
        "options": run.options,  # a backfill's state, or a full refresh
        "requests": run.request_counts or {},  # the script's HTTP requests, retries, waits, bytes
        "worker": worker_fields(run.worker),  # the process that executed it: host and pid
    }


def raise_for_invalid_payload(payload) -> None:
    if payload is not None and not isinstance(payload, dict):
        raise ValidationError.single("payload", "must be a JSON object")


