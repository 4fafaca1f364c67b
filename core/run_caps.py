"""A connection's cap on its runs at once (limits `max_concurrent_runs`), read from the store.

The cap holds across workers because it is counted where every worker's runs are: the
store. A connection's runs at once are its runs `running` or `loading` (on any worker), plus
the runs handed to the executor that no worker has claimed yet (still `queued` in the store;
the dispatcher knows them). The dispatcher offers no run of a connection that is at its cap,
and the Runs page says so for the runs that wait for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import and_, or_, select

from core.connections import runs_at_once
from storage.db import session_scope
from storage.models import Connection, Feed, Run

EXECUTING_STATUSES = ("running", "loading")


@dataclass(frozen=True)
class Cap:
    connection: str  # its name, for the Runs page
    runs: int  # at most this many at once


def connection_caps() -> dict[int, Cap]:
    """{connection id: its cap}, for the connections that have one."""
    with session_scope() as session:
        rows = session.exec(select(Connection.id, Connection.name, Connection.params)).all()
    return {conn_id: Cap(name, cap) for conn_id, name, params in rows if (cap := runs_at_once(params))}


def runs_at_once_by_connection(handed: set[str]) -> Counter:
    """{connection id: its runs at once}: executing in the store, or among `handed` (given to
    the executor, not yet claimed) and still queued. A run is counted once, whichever it is."""
    with session_scope() as session:
        rows = session.exec(
            select(Feed.connection_id, Run.id)
            .join(Feed, Feed.id == Run.feed_id)
            .where(Feed.connection_id.is_not(None),
                   or_(Run.status.in_(EXECUTING_STATUSES), and_(Run.id.in_(list(handed)), Run.status == "queued")))
        ).all()
    return Counter(conn_id for conn_id, _ in rows)


def due_runs(now: datetime, skip_connections: set[int], skip_runs: set[str],
             limit: int = 20) -> list[tuple[Run, int | None]]:
    """Queued runs whose time has come, oldest first, with their feed's connection id, leaving
    out the runs of `skip_connections` (at their cap) and the runs of `skip_runs` (already
    offered): a capped connection's runs never hide the runs queued behind them."""
    with session_scope() as session:
        query = (
            select(Run, Feed.connection_id)
            .join(Feed, Feed.id == Run.feed_id, isouter=True)
            .where(Run.status == "queued", (Run.not_before.is_(None)) | (Run.not_before <= now),
                   Run.id.not_in(list(skip_runs)),
                   Feed.connection_id.is_(None) | Feed.connection_id.not_in(list(skip_connections)))
            .order_by(Run.created_at)
            .limit(limit)
        )
        return [(run, conn_id) for run, conn_id in session.exec(query).all()]


def capped_waits(runs: list[Run], handed: set[str]) -> dict[str, tuple[Cap, int]]:
    """{run id: (the cap it waits for, its connection's runs at once)} for the queued runs
    among `runs` whose connection is at its cap (a run handed to the executor waits for a
    worker, not for its cap)."""
    queued = [run for run in runs if run.status == "queued" and run.feed_id is not None and run.id not in handed]
    caps = connection_caps() if queued else {}
    if not caps:
        return {}
    with session_scope() as session:
        connection_of = dict(session.exec(
            select(Feed.id, Feed.connection_id).where(Feed.id.in_({run.feed_id for run in queued}))).all())
    busy = runs_at_once_by_connection(handed)
    waits = {}
    for run in queued:
        conn_id = connection_of.get(run.feed_id)
        if conn_id in caps and busy[conn_id] >= caps[conn_id].runs:
            waits[run.id] = (caps[conn_id], busy[conn_id])
    return waits
