"""A feed's state (what its script saved with metadata.save) and the state's history."""

from __future__ import annotations

from sqlmodel import select

from storage.models import FeedState
from storage.db import session_scope
from storage.lookups import feed_by_name


def current_state_in(session, feed_id: int) -> dict:
    row = session.exec(
        select(FeedState).where(FeedState.feed_id == feed_id).order_by(FeedState.id.desc()).limit(1)
    ).first()
    return dict(row.state) if row else {}


def current_state(feed_name: str) -> dict:
    with session_scope() as session:
        feed = feed_by_name(session, feed_name)
        return current_state_in(session, feed.id)


def state_history(feed_name: str) -> list[FeedState]:
    """Oldest first: every state the feed has had, with the run (or reset) that set it."""
    with session_scope() as session:
        feed = feed_by_name(session, feed_name)
        return list(session.exec(select(FeedState).where(FeedState.feed_id == feed.id).order_by(FeedState.id)).all())


def reset_state(feed_name: str, state: dict | None = None) -> FeedState:
    """Set the state by hand (e.g. {} to fetch everything again, or an older state to replay)."""
    with session_scope() as session:
        feed = feed_by_name(session, feed_name)
        row = FeedState(feed_id=feed.id, run_id=None, state=dict(state or {}), reason="reset")
        session.add(row)
        session.flush()
        return row
