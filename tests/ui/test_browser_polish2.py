"""The app as a data scientist lives in it, in a real browser: a connection created in stage 1
is still chosen after a reload; walking through the stages of Edit feed is no unsaved change;
Stop ends a running test; a run a webhook started appears on Feeds without a click; a click
on a row of Runs opens that run; Delete closes the ⋮ menu behind its dialog. Screenshots of
Feeds and Runs at 1024 px and 1440 px wide go to a temporary folder, or to
TRIBUTARY_SCREENSHOT_DIR."""

from __future__ import annotations

import re

import pytest

from tests.ui.browser import type_in_ace, wait_until_idle
from tests.ui.test_browser import browser, enter, open_page, page, server, shot, shots  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

SLOW_TEST = ["import time", "for i in range(120):", "print('tick', i, flush=True)", "time.sleep(0.25)"]
HOOKED = ("import time\nfrom lib import outputStream\n"
          "for i in range(6):\n    outputStream.write({'i': i})\n    time.sleep(1.5)\n")


@pytest.fixture
def store(server, monkeypatch):
    """This process reads and writes the server's own store."""
    from storage.db import dispose_all

    monkeypatch.setenv("TRIBUTARY_DATA_DIR", str(server.data_dir))
    yield
    dispose_all()


def fresh_new_feed(page, server) -> None:
    open_page(page, server, "/new-feed")
    old_url = page.url
    page.get_by_role("button", name="Start over").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, start over").click()
    page.wait_for_url(lambda url: url != old_url)
    wait_until_idle(page)


def test_a_connection_created_in_stage_1_is_still_chosen_after_a_reload(page, server):
    from playwright.sync_api import expect

    fresh_new_feed(page, server)
    page.get_by_role("button", name="New connection").click()
    dialog = page.get_by_role("dialog")
    enter(dialog.get_by_label("Connection name", exact=True), "Reload_Api")  # an underscore is fine
    wait_until_idle(page)
    dialog.get_by_text("No Auth").click()
    wait_until_idle(page)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    choice = page.get_by_role("combobox", name="Select Connection")
    expect(choice).to_have_value("Reload_Api")
    wait_until_idle(page)
    page.reload()
    page.get_by_test_id("stSidebarNav").wait_for()
    wait_until_idle(page)
    expect(page.get_by_role("combobox", name="Select Connection")).to_have_value("Reload_Api")


def test_walking_through_the_stages_of_edit_feed_is_no_unsaved_change(page, server, store):
    from playwright.sync_api import expect

    from core.feeds import FeedSpec, create_feed

    create_feed(FeedSpec(name="walked_feed", script="from lib import outputStream\noutputStream.write({'a': 1})\n"))
    open_page(page, server, "/edit-feed?feed=walked_feed")
    for stage in ("Import Configuration", "Destination", "Trigger"):
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_role("heading", name=stage)).to_be_visible()
        wait_until_idle(page)
    page.get_by_role("button", name=re.compile(r"^1\. ")).click()
    wait_until_idle(page)
    expect(page.get_by_text("Unsaved changes to walked_feed")).to_have_count(0)
    open_page(page, server, "/edit-feed?feed=walked_feed")
    expect(page.get_by_text("Unsaved changes to walked_feed")).to_have_count(0)


def test_stop_ends_a_running_test(page, server):
    from playwright.sync_api import expect

    fresh_new_feed(page, server)
    page.get_by_role("button", name="Next").click()
    page.frame_locator('iframe[title="streamlit_ace.streamlit_ace"]').locator(".ace_content").wait_for()
    type_in_ace(page, SLOW_TEST)
    wait_until_idle(page)
    page.get_by_role("button", name="Test").click()
    expect(page.get_by_text(re.compile(r"tick \d+")).first).to_be_attached(timeout=30_000)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile(r"Test stopped after [\d.]+ s"))).to_be_visible(timeout=30_000)


def feed_row(page, name: str):
    return page.get_by_test_id("stHorizontalBlock").filter(has_text=name).filter(
        has=page.get_by_role("button", name="Run now")).last


def test_a_webhook_run_appears_on_feeds_without_a_click_and_a_row_click_opens_it_on_runs(page, server, shots, store):
    from playwright.sync_api import expect
    import requests

    from core.feeds import FeedSpec, create_feed
    from core.runs import list_runs, wait_for_run
    from core.webhooks import regenerate_token

    create_feed(FeedSpec(name="hooked_orders_daily_export", script=HOOKED, tags=["webhook"],
                         trigger={"type": "webhook"}))
    token = regenerate_token("hooked_orders_daily_export")
    for width in (1024, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        open_page(page, server, "/")
        row = feed_row(page, "hooked_orders_daily_export")
        expect(row.get_by_role("button", name="Run now")).to_be_visible()
        shot(page, shots, f"feeds-{width}.png")
    page.set_viewport_size({"width": 1024, "height": 900})
    open_page(page, server, "/")
    row = feed_row(page, "hooked_orders_daily_export")
    before = row.inner_text()

    response = requests.post(f"{server.url}/api/feeds/hooked_orders_daily_export/trigger",
                             headers={"X-Tributary-Token": token}, json={"order": 42}, timeout=10)
    assert response.status_code == 202, response.text
    # No click, no reload: the row changes by itself, first to the active run, then to its end.
    expect(row.get_by_text(re.compile(r"(queued|running|loading)$"))).to_be_visible(timeout=15_000)
    [run] = list_runs("hooked_orders_daily_export")
    assert wait_for_run(run.id, timeout_s=60).status == "succeeded"
    expect(row.get_by_text(re.compile(r"succeeded$"))).to_be_visible(timeout=15_000)
    assert row.inner_text() != before
    expect(row.get_by_text("6", exact=True)).to_be_visible()  # the last run's records

    # Runs: a click on the row opens the run, with the payload the webhook sent.
    from core.bootstrap import start_run

    other = start_run("hooked_orders_daily_export", wait=True)  # the newest: shown first
    open_page(page, server, "/runs")
    expect(page.get_by_role("heading", name=f"Run {other.id}")).to_be_visible()
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    # The table's rows, newest first: row 2 is the webhook's run; its row marker is at the left.
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 + 17)
    expect(page.get_by_role("heading", name=f"Run {run.id}")).to_be_visible()
    wait_until_idle(page)
    page.get_by_role("tab", name="Trigger").click()
    expect(page.get_by_text("Webhook payload")).to_be_visible()
    for width in (1024, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        wait_until_idle(page)
        shot(page, shots, f"runs-{width}.png")


def test_delete_closes_the_more_actions_popover_behind_its_dialog(page, server, store):
    from playwright.sync_api import expect

    from core.feeds import FeedSpec, create_feed

    create_feed(FeedSpec(name="doomed_feed", script="from lib import outputStream\n"))
    open_page(page, server, "/")
    feed_row(page, "doomed_feed").get_by_role("button", name=re.compile("more_vert")).click()
    menu = page.get_by_test_id("stPopoverBody")
    expect(menu.get_by_role("button", name="Edit")).to_be_visible()
    menu.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Delete the feed doomed_feed and its run history?")).to_be_visible()
    expect(page.get_by_test_id("stPopoverBody")).to_have_count(0)  # the menu closed behind the dialog
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
