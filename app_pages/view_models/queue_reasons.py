"""Why a queued run has not started yet, in words for the Runs page.

A run waits in the queue for one of three reasons (see core/services/dispatcher.py and
core/services/retries.py): it is a retry whose backoff has not run out (Run.not_before is still
ahead), its connection runs at most N at once and N of its runs are running (core/run_caps.py),
or every run slot (max_concurrent_runs) is taken. Otherwise the dispatcher starts it within a
second or so.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlmodel import select

from common.clock import aware
from core import bootstrap
from core.run_caps import Cap
from storage.models import Feed, Run, utcnow
from common.settings import get_settings
from storage.db import session_scope

RUNNING_STATUSES = ("running", "loading")


def _span(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if rest // 60 else f"{hours} h"


def queue_reason(run: Run, now: datetime, running: int, slots: int, attempts: int | None = None,
                 capped: tuple[Cap, int] | None = None) -> str | None:
    """Why this run is still queued (None when it is not queued). `attempts`: how many
    attempts the feed allows in all (1 + its retries), to say "attempt 2 of 4"; `capped`: the
    cap of its connection that it waits for, and that connection's runs at once."""
    if run.status != "queued":
        return None
    if run.not_before is not None and aware(run.not_before) > now:
        until = aware(run.not_before).astimezone(timezone.utc)
        of = f" of {attempts}" if attempts and attempts >= run.attempt else ""
        return (f"Retry, attempt {run.attempt}{of}: waits for its backoff until {until:%Y-%m-%d %H:%M:%S} UTC "
                f"(in {_span((until - now).total_seconds())})")
    if capped is not None:
        cap, busy = capped
        return (f"Waiting: connection {cap.connection} runs at most {cap.runs} at once "
                f"({busy} of its runs are running)")
    if running >= slots:
        return (f"Waiting for a free slot: {running} of {slots} runs are running "
                f"(at most {slots} at a time)")
    return "Waiting to start: a slot is free, so it starts in a moment"


def running_and_slots() -> tuple[int, int]:
    """Runs executing now, and how many may at a time."""
    dispatcher = bootstrap.current().dispatcher
    slots = dispatcher.max_concurrent if dispatcher else get_settings().max_concurrent_runs
    with session_scope() as session:
        running = len(session.exec(select(Run.id).where(Run.status.in_(RUNNING_STATUSES))).all())
    return running, max(1, slots)


def queue_reasons(runs: list[Run], now: datetime | None = None) -> dict[str, str]:
    """{run id: why it waits} for the queued runs among `runs`."""
    queued = [r for r in runs if r.status == "queued"]
    if not queued:
        return {}
    now = now or utcnow()
    running, slots = running_and_slots()
    dispatcher = bootstrap.current().dispatcher
    capped = dispatcher.capped_waits(queued) if dispatcher else {}
    with session_scope() as session:
        feed_ids = {r.feed_id for r in queued}
        retries = {f.id: f.retries for f in session.exec(select(Feed).where(Feed.id.in_(feed_ids))).all()}
    return {r.id: queue_reason(r, now, running, slots, retries.get(r.feed_id, 0) + 1, capped.get(r.id))
            for r in queued}
