"""Recovery: what a process that died left behind, taken care of by a live one.

Runs left active by a process of this host that no longer exists are marked failed (freeing
their feeds; their watchers hear of it and the feed's retries apply), and the deliveries it
left pending are sent. Called at the app's start-up and at every CLI command.
"""

from __future__ import annotations

from sqlmodel import select, update

from common.process import died
from core.runs import ACTIVE_STATUSES, finish, finished, remove_work_dirs
from storage.db import session_scope
from storage.models import Run


def recover_interrupted_runs() -> list[str]:
    """Mark the runs of dead processes failed; their ids."""
    recovered = []
    with session_scope() as session:
        for run in session.exec(select(Run).where(Run.status.in_(ACTIVE_STATUSES))).all():
            if not died(run.worker):
                continue
            # Conditional, like the executor's claim: of two processes starting at once, one
            # recovers the run (and notifies its watchers, and retries it).
            claim = update(Run).where(Run.id == run.id, Run.status == run.status).values(status="failed")
            if session.execute(claim).rowcount != 1:
                continue
            finish(session, run, "failed", "interrupted: the process running it stopped")
            recovered.append(run.id)
    for run_id in recovered:
        remove_work_dirs(run_id)
        finished(run_id)
    return recovered
