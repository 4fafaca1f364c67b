"""Pages that keep themselves up to date: Feeds and Runs poll one small query (the runs'
latest change) and redraw only when it changed, so a run a schedule or a webhook started
appears without a click; polling is slower when nothing is active."""

from core.bootstrap import start_run
from core.feeds import FeedSpec, create_feed
from core.run_details import active_count, change_marker
from core.runs import cancel_run, create_run, wait_for_run
from app_pages.parts.live_refresh import ACTIVE_EVERY_S, IDLE_EVERY_S, poll_interval
from tests.ui.test_feeds_page import status_badges

ONE = "from lib import outputStream\noutputStream.write({'id': 1})\n"
SLOW = "import time\nfor i in range(60):\n    time.sleep(0.25)\n"


def test_the_marker_changes_when_a_run_is_created_starts_and_ends_and_only_then(tributary):
    create_feed(FeedSpec(name="orders", script=ONE))
    idle = change_marker()
    assert change_marker() == idle  # nothing happened: the page is not redrawn
    assert active_count(idle) == 0 and poll_interval(idle) == IDLE_EVERY_S
    queued = create_run("orders", "webhook", {"id": 7}, announce=False)
    busy = change_marker()
    assert busy != idle and active_count(busy) == 1 and poll_interval(busy) == ACTIVE_EVERY_S
    cancel_run(queued.id)
    assert change_marker() != busy and active_count(change_marker()) == 0


def test_feeds_keeps_the_marker_it_was_drawn_with_and_a_webhook_run_shows_up(app):
    create_feed(FeedSpec(name="hooked", script=SLOW, trigger={"type": "webhook"}))
    at = app("feeds")
    assert at.session_state["feeds:change-marker"] == change_marker()
    assert status_badges(at) == ["never run"]
    run = start_run("hooked", trigger="webhook", payload={"n": 1})  # what POST /api/feeds/hooked/trigger does
    assert change_marker() != at.session_state["feeds:change-marker"]  # the next poll redraws the page
    at.run()
    assert status_badges(at)[0] in ("queued", "running")
    assert active_count(at.session_state["feeds:change-marker"]) == 1  # drawn with the run active: polls fast
    cancel_run(run.id)
    assert wait_for_run(run.id, timeout_s=30).status == "cancelled"
    at.run()
    assert status_badges(at) == ["cancelled"]


def test_runs_keeps_its_marker_too(app):
    at = app("runs")
    assert at.session_state["runs:change-marker"] == change_marker()
