"""A feed's state (what its script saved with metadata.save) and the state's history.

The state workbench: a state set by hand (edit, reset to {}, rewind to the state after an
earlier run) is a new history row that says who changed it and why, like a run's row says which
run; it is refused while the feed has a run in progress, whose commit would overwrite it (or be
overwritten). diff_states() says what a change would change, before it is made.
"""

from __future__ import annotations

import json

from sqlmodel import select

from common.errors import Conflict, NotFound, ValidationError
from storage.models import ActiveRun, FeedState
from storage.db import session_scope
from storage.lookups import feed_by_name

MAX_NOTE = 500
MAX_BY = 200


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


def reset_state(feed_name: str, state: dict | None = None, by: str | None = None, why: str | None = None) -> FeedState:
    """Set the state by hand: {} to fetch everything again, or a given state (reason "reset"
    for {}, "edit" otherwise)."""
    state = {} if state is None else state
    return set_state(feed_name, state, by, why, reason="edit" if state else "reset")


def set_state(feed_name: str, state, by: str | None = None, why: str | None = None,
              reason: str = "edit") -> FeedState:
    """Make `state` the feed's current state, recorded with who and why. Refused while a run
    of the feed is in progress."""
    checked = checked_state(state)
    problems = _text_problems("by", by, MAX_BY) + _text_problems("why", why, MAX_NOTE)
    if problems:
        raise ValidationError(problems)
    with session_scope() as session:
        feed = feed_by_name(session, feed_name)
        active = session.get(ActiveRun, feed.id)
        if active is not None:
            raise Conflict(f"state: feed {feed_name} has a run in progress ({active.run_id}); its end would "
                           "replace the state, so change it once the run has ended (or cancel it)")
        row = FeedState(feed_id=feed.id, run_id=None, state=checked, reason=reason,
                        changed_by=(by or "").strip() or None, note=(why or "").strip() or None)
        session.add(row)
        session.flush()
        session.refresh(row)
        return row


def rewind_state(feed_name: str, run_id: str, by: str | None = None, why: str | None = None) -> FeedState:
    """Make the state after an earlier run (or checkpoint) of the feed current again."""
    with session_scope() as session:
        feed = feed_by_name(session, feed_name)
        earlier = session.exec(select(FeedState).where(FeedState.feed_id == feed.id, FeedState.run_id == run_id)
                               .order_by(FeedState.id.desc())).first()
        if earlier is None:
            raise NotFound(f"run: {run_id!r} committed no state of feed {feed_name} (see `state {feed_name} "
                           "--history` for the runs that did)")
        state = dict(earlier.state)
    return set_state(feed_name, state, by, why or f"rewound to the state after run {run_id}", reason="rewind")


def checked_state(state) -> dict:
    """A state must be a JSON object of JSON values (what metadata.save accepts)."""
    if not isinstance(state, dict):
        raise ValidationError([("state", f"must be a JSON object, not {type(state).__name__}")])
    try:
        text = json.dumps(state, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError([("state", f"must hold JSON values only: {exc}")]) from None
    return json.loads(text)


def _text_problems(name: str, value: str | None, limit: int) -> list[tuple[str, str]]:
    if value is not None and len(value) > limit:
        return [(name, f"at most {limit} characters")]
    return []


def diff_states(old: dict, new: dict, path: str = "") -> list[dict]:
    """What changes from `old` to `new`, key by key (dotted paths into nested objects):
    [{"path", "change": added|removed|changed, "old", "new"}]."""
    changes = []
    for key in sorted(set(old) | set(new), key=str):
        where = f"{path}.{key}" if path else str(key)
        if key not in old:
            changes.append({"path": where, "change": "added", "old": None, "new": new[key]})
        elif key not in new:
            changes.append({"path": where, "change": "removed", "old": old[key], "new": None})
        elif isinstance(old[key], dict) and isinstance(new[key], dict):
            changes += diff_states(old[key], new[key], where)
        elif old[key] != new[key] or type(old[key]) is not type(new[key]):
            changes.append({"path": where, "change": "changed", "old": old[key], "new": new[key]})
    return changes
