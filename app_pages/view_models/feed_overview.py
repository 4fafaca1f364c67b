"""The Feeds page's table: each feed with its last run, next run and tags, filtered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core import schedule_slots
from core.feeds import connection_name, list_feeds
from storage.models import Feed
from core.runs import ACTIVE_STATUSES, list_runs

NEVER_RUN = "never run"
PAUSED = "paused"
STATUS_CHOICES = (NEVER_RUN, "queued", "running", "loading", "succeeded", "failed", "cancelled", PAUSED)


@dataclass
class FeedRow:
    name: str
    status: str  # the last run's status, or NEVER_RUN
    paused: bool
    last_run_at: datetime | None
    last_run_id: str | None
    records_loaded: int | None
    next_run: str
    trigger: str
    connection: str | None
    tags: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def next_run_text(feed: Feed) -> str:
    """When the feed runs next, in words: the scheduler's next fire time for a schedule."""
    if feed.paused:
        return "paused"
    kind = (feed.trigger or {}).get("type", "manual")
    if kind == "manual":
        return "manual"
    if kind == "webhook":
        return "on webhook"
    fire = schedule_slots.next_fire_of(feed.id)
    return fire.strftime("%Y-%m-%d %H:%M UTC") if fire else "no further run"


def _row(feed: Feed) -> FeedRow:
    last = next(iter(list_runs(feed.name, limit=1)), None)
    return FeedRow(
        name=feed.name, status=last.status if last else NEVER_RUN, paused=feed.paused,
        last_run_at=(last.started_at or last.created_at) if last else None, last_run_id=last.id if last else None,
        records_loaded=last.records_loaded if last and last.status == "succeeded" else None,
        next_run=next_run_text(feed), trigger=(feed.trigger or {}).get("type", "manual"),
        connection=connection_name(feed), tags=list(feed.tags or []),
    )


def feed_rows(name_contains: str = "", tags: list[str] | None = None,
              statuses: list[str] | None = None) -> list[FeedRow]:
    """Feeds whose name contains the text (any case), that carry every chosen tag, and whose
    last run has one of the chosen statuses (PAUSED matches paused feeds)."""
    rows = []
    needle = name_contains.strip().lower()
    for feed in list_feeds():
        if needle and needle not in feed.name.lower():
            continue
        if tags and not set(tags) <= set(feed.tags or []):
            continue
        row = _row(feed)
        if statuses and not (row.status in statuses or (PAUSED in statuses and row.paused)):
            continue
        rows.append(row)
    return rows


def all_tags() -> list[str]:
    return sorted({tag for feed in list_feeds() for tag in (feed.tags or [])})
