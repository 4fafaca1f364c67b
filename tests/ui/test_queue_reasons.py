"""Why a queued run waits, as the Runs page says it: a retry's backoff (until when, attempt
N of M), every slot taken, or about to start."""

from datetime import datetime, timedelta, timezone

from core.run_caps import Cap
from storage.models import Run
from app_pages.view_models.queue_reasons import queue_reason

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc)


def run(**values) -> Run:
    return Run(id="r1", feed_name="orders", status="queued", **values)


def test_a_retry_waits_for_its_backoff_even_when_slots_are_free():
    retry = run(attempt=2, not_before=NOW + timedelta(seconds=125))
    assert queue_reason(retry, NOW, running=0, slots=2, attempts=4) == (
        "Retry, attempt 2 of 4: waits for its backoff until 2026-11-26 13:02:05 UTC (in 2 min 5 s)")


def test_a_backoff_stored_without_its_zone_is_read_as_utc():
    retry = run(attempt=3, not_before=datetime(2026, 11, 26, 15, 30))  # as SQLite hands it back
    assert queue_reason(retry, NOW, running=0, slots=2, attempts=3).endswith("15:30:00 UTC (in 2 h 30 min)")


def test_a_run_whose_backoff_is_over_waits_for_a_slot_like_any_other():
    due = run(attempt=2, not_before=NOW - timedelta(seconds=1))
    assert queue_reason(due, NOW, running=2, slots=2) == (
        "Waiting for a free slot: 2 of 2 runs are running (at most 2 at a time)")
    assert queue_reason(due, NOW, running=1, slots=2) == "Waiting to start: a slot is free, so it starts in a moment"


def test_only_queued_runs_wait():
    assert queue_reason(Run(id="r2", feed_name="orders", status="running"), NOW, running=5, slots=1) is None


def test_a_run_of_a_capped_connection_says_which_cap_it_waits_for():
    capped = (Cap("sales_api", 2), 2)
    assert queue_reason(run(), NOW, running=2, slots=8, capped=capped) == (
        "Waiting: connection sales_api runs at most 2 at once (2 of its runs are running)")
