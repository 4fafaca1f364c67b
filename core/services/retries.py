"""Retries: a failed run of a feed with `retries > 0` is followed by another attempt, after an
exponential backoff (retry_backoff_s, then twice that, ...; common/backoff.py). Each attempt
is a run of its own, linked to the first by parent_run_id, queued with its not_before: the
dispatcher starts it when its time comes (in the CLI, the `run` command waits for it)."""

from __future__ import annotations

from datetime import timedelta

from common.backoff import backoff_s
from common.errors import Conflict
from core import events
from core.runs import RunOptions, create_run
from storage.db import session_scope
from storage.models import Feed, Run, utcnow


def retry_delay_s(backoff_base_s: int, attempt: int) -> int:
    """Delay before attempt number `attempt + 1`, after attempt `attempt` failed."""
    return int(backoff_s(backoff_base_s, attempt))


def schedule_retry(run: Run) -> Run | None:
    """Queue the next attempt of a failed run, if its feed has one left; the retry run."""
    if run.status != "failed" or run.kind != "run":
        return None
    with session_scope() as session:
        feed = session.get(Feed, run.feed_id)
    if feed is None or run.attempt > feed.retries:
        return None
    not_before = utcnow() + timedelta(seconds=retry_delay_s(feed.retry_backoff_s, run.attempt))
    try:
        return create_run(feed.name, trigger=run.trigger, payload=run.trigger_payload,
                          parent_run_id=run.parent_run_id or run.id, attempt=run.attempt + 1, not_before=not_before,
                          options=RunOptions.of(run.options))  # a backfill's retry is the same backfill
    except Conflict:
        return None  # someone started the feed meanwhile: that run stands in for the retry


def on_run_finished(event: events.RunFinished) -> None:
    schedule_retry(event.run)
