"""Recovery: what a process that died left behind, taken care of by a live one.

Called at the app's start-up and at every CLI command (core/bootstrap.py Services.start), and
every RECOVERY_POLL_S by the app and by each worker (RecoveryService), for processes that die
while it runs (a CLI `run`, another app process, a worker). A run left active by a dead process
is settled by the two-phase commit's rules (core/execution.py). A process is judged dead by
this host's process table when the run's worker id is of this host, and by the run's heartbeat
(core/heartbeat.py) when it is of another host: one older than TRIBUTARY_HEARTBEAT_STALE_S
(60 s by default) means that host or its process is gone, or cut off from the store for that
long. The rules:
- no pending outcome (it died before its commit began): failed, nothing was loaded;
- a pending outcome: the destinations' ledgers decide. Every one holds the run: the commit is
  finished (the state advances, the run shows its counts and is not retried). None does: the
  run failed cleanly. Some do: the others are loaded from the run's kept spool, and the commit
  is finished; if that cannot be done, the run fails with a message naming the destinations
  that hold it. A destination that cannot be asked leaves the run pending, for the next
  recovery.
A run that checkpointed (metadata.checkpoint) keeps what its checkpoints committed: its state
is the feed's current one, and the next run starts from it. One that died with a checkpoint
pending (a pending outcome while running) has it settled by the same rules, under the
checkpoint's ledger id, and then fails: its script is gone.
A failed run frees its feed; its watchers hear of it and the feed's retries apply. The files
of a settled run are removed, and so are those of runs that ended before their process could
remove them. The deliveries a dead process left pending are resumed by bootstrap.
"""

from __future__ import annotations

import logging
import socket
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from sqlmodel import select, update

from common.process import died, worker_id
from common.settings import get_settings
from core.execution import counted, holding, partial_commit_error
from core.heartbeat import stale, stale_after_s
from core.log_chunks import append_to_stored
from core.schema_history import change_lines, record_change
from core.services.loop import LoopService
from runners.leftovers import kill_left_sandbox
from core.runs import (ACTIVE_STATUSES, complete_run, finish, finished, get_run, ledger_id, record_checkpoint,
                       remove_left_work_dirs, remove_work_dirs)
from storage.db import session_scope
from storage.destinations import get_destination
from storage.destinations.base import LoadRequest
from storage.models import Run, utcnow

logger = logging.getLogger("tributary.recovery")

INTERRUPTED = "interrupted: the process running it stopped"
RECOVERY_POLL_S = 30.0


class RecoveryService(LoopService):
    """The app's recovery of runs that processes dying while it runs left (see above)."""

    name = "recovery"

    def __init__(self, poll_s: float = RECOVERY_POLL_S):
        super().__init__(poll_s)

    def run_once(self) -> list[str]:
        recovered = recover_interrupted_runs()
        if recovered:
            logger.warning("settled %d run(s) a stopped process left: %s", len(recovered), ", ".join(recovered))
        return recovered


def recover_interrupted_runs(destinations: Callable = get_destination) -> list[str]:
    """Settle the runs of dead processes (see the module docstring); the ids of those settled."""
    now = utcnow()
    with session_scope() as session:
        left = [(run.id, run.status, run.worker, run.pending_outcome is not None, run.heartbeat_at, run.sandbox_ref)
                for run in session.exec(select(Run).where(Run.status.in_(ACTIVE_STATUSES))).all()
                if _left_by_dead_process(run, now)]
    recovered = []
    for run_id, status, worker, pending, heartbeat_at, sandbox_ref in left:
        if _on_this_host(worker):  # a script must not write on while its run is settled and retried
            with suppress(Exception):
                kill_left_sandbox(sandbox_ref, get_settings().work_root / run_id)
        lease = _Lease(worker, heartbeat_at, now)
        try:
            settled = (_reconcile(run_id, status, lease, destinations) if pending
                       else _fail_interrupted(run_id, status, lease))
        except Exception:  # noqa: BLE001 - one run that cannot be settled must not keep the others
            logger.exception("run %s could not be recovered; it is left for the next recovery", run_id)
            continue
        if settled:
            recovered.append(run_id)
    for run_id in recovered:
        remove_work_dirs(run_id)
        finished(run_id)
    with suppress(Exception):
        remove_left_work_dirs()
    return recovered


def _on_this_host(worker: str | None) -> bool:
    return bool(worker) and worker.partition(":")[0] == socket.gethostname()


def _left_by_dead_process(run: Run, now: datetime) -> bool:
    """This host's processes are seen in its process table; another host's by their heartbeat."""
    if not run.worker:
        return False
    return died(run.worker) if _on_this_host(run.worker) else stale(run.heartbeat_at, now)


class _Lease:
    """The dead process's hold on a run as recovery found it: taking the run over is
    conditional on it, so that a worker whose heartbeat came back meanwhile keeps its run."""

    def __init__(self, worker: str | None, heartbeat_at: datetime | None, now: datetime):
        self.worker, self.heartbeat_at = worker, heartbeat_at
        self.by_heartbeat = not _on_this_host(worker)
        self.stale_before = now - timedelta(seconds=stale_after_s())

    def held(self):
        """The condition that the run is still the dead process's."""
        condition = Run.worker == self.worker
        if self.by_heartbeat:
            condition = condition & (Run.heartbeat_at < self.stale_before)
        return condition


def _fail_interrupted(run_id: str, status: str, lease: _Lease) -> bool:
    with session_scope() as session:
        # Conditional, like the executor's claim: of two processes starting at once, one
        # recovers the run (and notifies its watchers, and retries it).
        claim = update(Run).where(Run.id == run_id, Run.status == status, lease.held()).values(status="failed")
        if session.execute(claim).rowcount != 1:
            return False
        run = session.get(Run, run_id)
        session.refresh(run)
        error = INTERRUPTED
        if status == "loading":
            error += " before its commit began: nothing was loaded"
            error += _after_checkpoints(run) if run.checkpoints else ", the state did not advance"
        elif run.checkpoints:
            error += _after_checkpoints(run)
        note = _RecoveryNote(run)
        finish(session, run, "failed", error)
    note(f"run failed: {error} (settled by recovery)")
    return True


def _after_checkpoints(run: Run) -> str:
    last = run.checkpoints[-1]
    return (f"; its {len(run.checkpoints)} checkpoint(s) stay committed ({last['records']} records): the next run "
            "starts from the last one's state")


def _claim_pending(run_id: str, held, worker: str | None, heartbeat_at: datetime | None,
                   status: str = "loading") -> bool:
    """Take a pending run over from its dead process (or give it back): conditional, so that
    of two recovering processes one settles it. If this process dies too, the next recovery
    sees this process dead and takes it over in turn (every step below is idempotent). Taking
    it over renews its heartbeat (this process's lease while it settles the run); giving it
    back restores the dead process's."""
    with session_scope() as session:
        claim = (update(Run).where(Run.id == run_id, Run.status == status, held)
                 .values(worker=worker, heartbeat_at=heartbeat_at))
        return session.execute(claim).rowcount == 1


def _reconcile(run_id: str, status: str, lease: _Lease, destinations: Callable) -> bool:
    me = worker_id()
    if not _claim_pending(run_id, lease.held(), me, utcnow(), status):
        return False
    try:
        return _settle(run_id, status, lease, me, destinations)
    except BaseException:
        with suppress(Exception):  # give it back: the next recovery tries again
            _claim_pending(run_id, Run.worker == me, lease.worker, lease.heartbeat_at, status)
        raise


def _settle(run_id: str, status: str, lease: _Lease, me: str, destinations: Callable) -> bool:
    run = get_run(run_id)
    pending = run.pending_outcome
    ledger, checkpoint = ledger_id(run_id, pending), pending.get("checkpoint")
    what = f"checkpoint {checkpoint}" if checkpoint else "run"
    note = _RecoveryNote(run)
    held, missing, unknown = holding(destinations, pending["destinations"], pending["table"], ledger)
    note(f"recovering: the process committing this {what} stopped; destinations holding it: "
         f"{', '.join(held) or 'none'}")
    if unknown:
        # Cannot tell what was committed: settle nothing now, let a later recovery ask again.
        note("could not ask " + ", ".join(f"{n} ({e})" for n, e in unknown.items()) + ": left pending")
        _claim_pending(run_id, Run.worker == me, lease.worker, lease.heartbeat_at, status)
        return False
    if not held:
        if checkpoint:
            _fail(run_id, INTERRUPTED + f" while committing checkpoint {checkpoint}, before any destination "
                  "committed it" + (_after_checkpoints(run) if run.checkpoints else
                                    ": nothing was loaded, the state did not advance"))
        else:
            _fail(run_id, INTERRUPTED + " before any destination committed: nothing was loaded"
                  + (_after_checkpoints(run) if run.checkpoints else ", the state did not advance"))
        note(f"run failed: no destination holds the {what}")
        return True
    results = dict(run.destination_results or {})
    for name in missing:
        error = _complete_load(run_id, pending, name, destinations, results, note)
        if error is not None:
            now_held = held + [n for n in missing if n in results]
            rest = [n for n in missing if n not in results]
            _fail(run_id, partial_commit_error(now_held, rest, {}, INTERRUPTED + f" while committing; {error}",
                                               ledger if checkpoint else None))
            note(f"run failed: {error}")
            return True
    loaded, results = counted(pending, results, destinations)
    if checkpoint:
        record_checkpoint(run_id, pending, loaded, results)
        _fail(run_id, INTERRUPTED + f" after checkpoint {checkpoint} was committed" + _after_checkpoints(get_run(run_id)))
        note(f"checkpoint {checkpoint} committed on recovery: {loaded} records loaded; the run failed (its script "
             "stopped)")
        return True
    complete_run(run_id, pending, loaded, results)
    note(f"run succeeded on recovery: {get_run(run_id).records_loaded} records loaded; state "
         f"{'saved' if pending['state_saved'] else 'unchanged'}")
    return True


def _complete_load(run_id: str, pending: dict, name: str, destinations: Callable, results: dict,
                   note: Callable[[str], None]) -> str | None:
    """Load a destination the run's process did not reach from the kept spool; None, or why not."""
    files = [Path(f) for f in pending["spool"]]
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        return f"the run's spool is gone ({', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}), so {name} cannot be loaded"
    request = LoadRequest(table=pending["table"], files=files, load_type=pending["load_type"],
                          run_id=ledger_id(run_id, pending),
                          loaded_at=utcnow(), primary_key=list(pending["primary_key"]),
                          max_rejected_ratio=pending["max_rejected_ratio"],
                          schema_policy=pending.get("schema_policy", "evolve"))
    try:
        result = destinations(name).load(request)
    except Exception as exc:  # noqa: BLE001 - reported on the run
        return f"loading {name} from the kept spool failed: {exc}"
    results[name] = {"rows": result.rows, "skipped": result.skipped, "location": result.location,
                     "rejected": result.rejected}
    for line in change_lines({**record_change(run_id, name, result), "rejected": 0}):
        note(f"{name}: {line}")
    note(f"{name}: {result.rows} rows committed from the kept spool")
    return None


def _fail(run_id: str, error: str) -> None:
    with session_scope() as session:
        finish(session, session.get(Run, run_id), "failed", error)


class _RecoveryNote:
    """Appends recovery's lines to the run's log, where its earlier lines are: the file (this
    host's run) and the store's copy (a worker's run, which the app reads from there)."""

    def __init__(self, run: Run):
        self._path = Path(run.log_path) if run.log_path else None
        self._run_id, self._feed_id = run.id, run.feed_id

    def __call__(self, message: str) -> None:
        logger.info(message)
        line = f"[tributary {utcnow().strftime('%H:%M:%S')}] {message}\n"
        with suppress(Exception):  # the note is a courtesy: recovery goes on without it
            append_to_stored(self._run_id, self._feed_id, line)
        if self._path is None:
            return
        with suppress(OSError):
            with open(self._path, "a", encoding="utf-8") as handle:
                handle.write(line)
