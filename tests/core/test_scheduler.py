"""Schedules with an injected clock: tick(now) is called with the time the test chooses."""

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import select

from core import bootstrap, schedule_slots, scheduler
from core.feeds import FeedSpec, create_feed, edit_feed, set_paused
from storage.models import Run
from core.runs import list_runs
from core.bootstrap import execute_run
from storage.db import session_scope
from tests.helpers import capture_queued_runs

SCRIPT = "from lib import outputStream\noutputStream.write({'a': 1})\n"
UTC = timezone.utc


@pytest.fixture
def submitted():
    """Runs the scheduler hands to the dispatcher, kept here instead of executed."""
    yield capture_queued_runs()
    bootstrap.build()


def weekly(days, time, tz="UTC"):
    return {"type": "schedule", "schedule": {"kind": "weekly", "days": days, "time": time, "timezone": tz}}


def every(n, unit="minutes"):
    return {"type": "schedule", "schedule": {"kind": "interval", "every": n, "unit": unit}}


def runs_of(feed):
    return sorted(list_runs(feed, limit=1000), key=lambda r: r.created_at)


def test_days_and_time_of_day(tributary, submitted):
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    create_feed(FeedSpec(name="daily", script=SCRIPT, trigger=weekly(["mon", "wed"], "09:30", "Europe/Paris")))
    assert schedule_slots.sync_feed("daily", now=sunday) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # 09:30 Paris
    assert scheduler.tick(now=datetime(2026, 11, 30, 8, 29, 59, tzinfo=UTC)) == []
    fired = scheduler.tick(now=datetime(2026, 11, 30, 8, 30, 0, 400000, tzinfo=UTC))
    assert len(fired) == 1 and fired[0][1].startswith("started run")
    assert len(submitted) == 1
    run = runs_of("daily")[0]
    assert run.trigger == "schedule"
    assert schedule_slots.next_fire_of(run.feed_id) == datetime(2026, 12, 2, 8, 30, tzinfo=UTC)  # Wednesday


def test_every_n_minutes(tributary, submitted):
    start = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)
    create_feed(FeedSpec(name="often", script=SCRIPT, trigger=every(15)))
    schedule_slots.sync_feed("often", now=start)
    for minute in (15, 30, 45):
        now = datetime(2026, 11, 26, 10, minute, 1, tzinfo=UTC)
        assert [outcome.split(" run")[0] for _, outcome in scheduler.tick(now=now)] == ["started"]
        execute_run(submitted[-1])  # finish it, so the next fire is not refused as overlapping
    assert [r.status for r in runs_of("often")] == ["succeeded"] * 3
    assert [r.scheduled_for.minute for r in runs_of("often")] == [15, 30, 45]


def test_a_fire_while_the_previous_run_is_active_is_skipped_and_recorded(tributary, submitted):
    create_feed(FeedSpec(name="slowfeed", script=SCRIPT, trigger=every(1)))
    schedule_slots.sync_feed("slowfeed", now=datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
    scheduler.tick(now=datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC))
    fired = scheduler.tick(now=datetime(2026, 1, 1, 0, 2, 0, tzinfo=UTC))
    assert fired[0][1].startswith("skipped: feed 'slowfeed' already has an active run")
    assert len(runs_of("slowfeed")) == 1


def test_run_once_at_a_time(tributary, submitted):
    at = "2026-12-24T18:00:00+00:00"
    create_feed(FeedSpec(name="once", script=SCRIPT, trigger={"type": "once", "schedule": {"kind": "once", "at": at}}))
    schedule_slots.sync_feed("once", now=datetime(2026, 12, 1, tzinfo=UTC))
    assert scheduler.tick(now=datetime(2026, 12, 24, 17, 59, tzinfo=UTC)) == []
    assert len(scheduler.tick(now=datetime(2026, 12, 24, 18, 0, 1, tzinfo=UTC))) == 1
    execute_run(submitted[-1])
    assert scheduler.tick(now=datetime(2026, 12, 31, tzinfo=UTC)) == []
    assert len(runs_of("once")) == 1


def test_pause_and_resume(tributary, submitted):
    start = datetime(2026, 3, 1, 0, 0, 10, tzinfo=UTC)
    feed = create_feed(FeedSpec(name="pausable", script=SCRIPT, trigger=every(10)))
    schedule_slots.sync_feed("pausable", now=start)
    set_paused("pausable", True)
    assert schedule_slots.next_fire_of(feed.id) is None
    assert scheduler.tick(now=start + timedelta(hours=1)) == []
    set_paused("pausable", False)
    assert schedule_slots.next_fire_of(feed.id) > datetime.now(UTC) - timedelta(seconds=1)


def test_editing_the_schedule_changes_the_next_fire_at_once(tributary, submitted):
    feed = create_feed(FeedSpec(name="edited", script=SCRIPT, trigger=every(2, "hours")))
    before = schedule_slots.next_fire_of(feed.id)
    edit_feed("edited", trigger=every(1))
    after = schedule_slots.next_fire_of(feed.id)
    assert after < before and after - datetime.now(UTC) <= timedelta(minutes=1)
    edit_feed("edited", trigger={"type": "manual"})
    assert schedule_slots.next_fire_of(feed.id) is None


def test_fires_missed_while_down_run_once_after_start_up(tributary, submitted):
    t0 = datetime(2026, 5, 1, 8, 0, 5, tzinfo=UTC)
    feed = create_feed(FeedSpec(name="missed", script=SCRIPT, trigger=every(15)))
    schedule_slots.sync_feed("missed", now=t0)
    # The app is down for two hours: eight fires are missed. At start-up...
    back = t0 + timedelta(hours=2)
    schedule_slots.rebuild(now=back)
    fired = scheduler.tick(now=back)
    assert len(fired) == 1 and fired[0][1].startswith("started run")
    assert scheduler.tick(now=back + timedelta(seconds=1)) == []
    assert len(runs_of("missed")) == 1
    assert schedule_slots.next_fire_of(feed.id) == datetime(2026, 5, 1, 10, 15, tzinfo=UTC)


def test_fires_missed_beyond_the_grace_time_are_skipped(tributary, submitted):
    t0 = datetime(2026, 5, 1, 8, 0, 5, tzinfo=UTC)
    create_feed(FeedSpec(name="stale", script=SCRIPT, trigger=every(1, "hours")))
    schedule_slots.sync_feed("stale", now=t0)
    # The newest missed fire (08:00 three days later) is 30 minutes old: past a 10-minute grace.
    fired = scheduler.tick(now=t0 + timedelta(days=3, minutes=30), grace_s=600)
    assert fired == [("stale", "missed: the app was down past the grace time")]
    assert runs_of("stale") == []


TICKER = """
import sys, time
from datetime import datetime, timezone
from core import scheduler
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.001)
print(scheduler.tick(now=datetime.fromisoformat(sys.argv[2])))
"""


def test_two_processes_on_one_postgres_store_fire_a_due_job_once(monkeypatch, tmp_path, postgres_url):
    monkeypatch.setenv("TRIBUTARY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRIBUTARY_DATABASE_URL", postgres_url)
    t0 = datetime(2026, 6, 1, 12, 0, 5, tzinfo=UTC)
    create_feed(FeedSpec(name="shared", script=SCRIPT, trigger=every(5)))
    schedule_slots.sync_feed("shared", now=t0)
    due = (t0 + timedelta(minutes=5)).isoformat()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    import time

    for attempt in range(3):  # several due fires, raced each time
        start = time.time() + 2.0
        now = (datetime.fromisoformat(due) + timedelta(seconds=1)).isoformat()
        procs = [subprocess.Popen([sys.executable, "-c", TICKER, str(start), now], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        with session_scope() as session:
            runs = session.exec(select(Run).where(Run.feed_name == "shared")).all()
        assert len(runs) == attempt + 1, outputs
        for run in runs:
            if run.status == "queued":
                execute_run(run.id)
        due = (datetime.fromisoformat(due) + timedelta(minutes=5)).isoformat()
