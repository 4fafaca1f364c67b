"""Small read-only queries for the pages: what changed in the runs since the page last looked,
and a run's attempts (its first run and its retries)."""

from __future__ import annotations

from sqlalchemy import case, func
from sqlmodel import or_, select

from core.runs import ACTIVE_STATUSES
from storage.db import session_scope
from storage.models import Feed, Run


def change_marker() -> tuple:
    """One row that changes whenever a run is created, starts, loads, ends or is removed, or a
    feed is saved: (runs, active runs, the latest of each time, the feeds' latest update).
    Cheap enough to poll every few seconds; a page redraws only when it differs."""
    with session_scope() as session:
        runs = session.exec(select(
            func.count(Run.id),
            func.sum(case((Run.status.in_(ACTIVE_STATUSES), 1), else_=0)),
            func.max(Run.created_at), func.max(Run.started_at), func.max(Run.loading_at),
            func.max(Run.finished_at),
        ).where(Run.kind == "run")).one()
        feeds = session.exec(select(func.count(Feed.id), func.max(Feed.updated_at))).one()
    return tuple(str(v) for v in (*runs, *feeds))


def active_count(marker: tuple) -> int:
    """How many runs were active when the marker was read."""
    try:
        return int(marker[1])
    except (ValueError, TypeError, IndexError):
        return 0


def attempts_of(run: Run) -> list[Run]:
    """The run's attempts, first to last: the first run and its retries (each retry names the
    first run as its parent, see core/services/retries.py)."""
    root = run.parent_run_id or run.id
    with session_scope() as session:
        query = select(Run).where(or_(Run.id == root, Run.parent_run_id == root)).order_by(Run.attempt, Run.created_at)
        return list(session.exec(query).all())
