"""Retries: a failed run of a feed with `retries > 0` is followed by another attempt, after
an exponential backoff (retry_backoff_s, then twice that, ...). Each attempt is a run of its
own, linked to the first by parent_run_id."""

from __future__ import annotations

from datetime import timedelta

from core import dispatch, events
from common.errors import Conflict
from storage.models import Feed, Run, utcnow
from storage.db import session_scope


def retry_delay_s(backoff_s: int, attempt: int) -> int:
    """Delay before attempt number `attempt + 1`, after attempt `attempt` failed."""
    return backoff_s * 2 ** (attempt - 1)


@events.on_run_finished
def schedule_retry(run: Run) -> Run | None:
    if run.status != "failed" or run.kind != "run":
        return None
    with session_scope() as session:
        feed = session.get(Feed, run.feed_id)
    if feed is None or run.attempt > feed.retries:
        return None
    from core.runs import create_run

    not_before = utcnow() + timedelta(seconds=retry_delay_s(feed.retry_backoff_s, run.attempt))
    try:
        retry = create_run(feed.name, trigger=run.trigger, payload=run.trigger_payload,
                           parent_run_id=run.parent_run_id or run.id, attempt=run.attempt + 1, not_before=not_before)
    except Conflict:
        return None  # someone started the feed meanwhile: that run stands in for the retry
    dispatch.submit(retry.id) if dispatch.current() else None
    return retry
