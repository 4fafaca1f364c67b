"""A feed's state (what its script saved with metadata.save) and the state's history."""

from __future__ import annotations

from sqlmodel import select

from common.errors import NotFound
from storage.models import Feed, FeedState
from storage.db import session_scope


def current_state_in(session, feed_id: int) -> dict:
    row = session.exec(
        select(FeedState).where(FeedState.feed_id == feed_id).order_by(FeedState.id.desc()).limit(1)
    ).first()
    return dict(row.state) if row else {}


def current_state(feed_name: str) -> dict:
    with session_scope() as session:
        feed = session.exec(select(Feed).where(Feed.name == feed_name)).first()
        if feed is None:
            raise NotFound(f"feed {feed_name!r} does not exist")
        return current_state_in(session, feed.id)


def state_history(feed_name: str) -> list[FeedState]:
    """Oldest first: every state the feed has had, with the run (or reset) that set it."""
    with session_scope() as session:
        feed = session.exec(select(Feed).where(Feed.name == feed_name)).first()
        if feed is None:
            raise NotFound(f"feed {feed_name!r} does not exist")
        return list(session.exec(select(FeedState).where(FeedState.feed_id == feed.id).order_by(FeedState.id)).all())


def reset_state(feed_name: str, state: dict | None = None) -> FeedState:
    """Set the state by hand (e.g. {} to fetch everything again, or an older state to replay)."""
    with session_scope() as session:
        feed = session.exec(select(Feed).where(Feed.name == feed_name)).first()
        if feed is None:
            raise NotFound(f"feed {feed_name!r} does not exist")
        row = FeedState(feed_id=feed.id, run_id=None, state=dict(state or {}), reason="reset")
        session.add(row)
        session.flush()
        return row
