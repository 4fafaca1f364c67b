"""The app in a real browser: a user types a script into the Ace editor, tests it with live
logs and the preview, goes through the four stages, saves and runs the feed; a draft
survives a reload; a 10 s run leaves the UI responsive while its log grows on screen.
And the app as a data scientist lives in it: a connection created in stage 1 is still chosen
after a reload; walking through Edit feed's stages is no unsaved change; Stop ends a running
test; a run a webhook started appears on Feeds without a click; a click on a row of Runs
opens that run; Delete closes the ⋮ menu behind its dialog (Feeds and Runs at 1024 and 1440 px).

Screenshots of each stage go to a temporary folder, or to TRIBUTARY_SCREENSHOT_DIR:
`make screenshots` sets it to docs/screenshots/, which the README shows."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.helpers import wait_until
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, ace_text, chromium_available, type_in_ace, wait_until_idle
from tests.ui.server import start_server

pytestmark = pytest.mark.browser

MARKER = "# typed in a real browser"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("browser") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    if not chromium_available():
        missing_service(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a busy CI machine may take seconds per rerun

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request, tmp_path):
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
    context.close()


def enter(field, text: str) -> None:
    """Type into a text input and press Enter, which hands the value to Streamlit. (Tab is not
    enough in a password field: focus stays inside the widget, on its eye button.)"""
    field.fill(text)
    field.press("Enter")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: TRIBUTARY_SCREENSHOT_DIR (`make screenshots` sets it to
    docs/screenshots, which the README shows), else a temporary folder of the test run."""
    configured = os.environ.get("TRIBUTARY_SCREENSHOT_DIR")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page, shots: Path, name: str) -> None:
    """The whole page, into the folder `shots`: Streamlit scrolls inside its main area, so the
    window is made tall enough to show all of it, then put back."""
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    tall = max(size["height"], height + 40)
    page.set_viewport_size({"width": size["width"], "height": tall})
    # The layout settles at the new size: the window has it, and the page has drawn two frames since.
    page.wait_for_function("tall => window.innerHeight === tall", arg=tall)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.screenshot(path=str(shots / name))
    page.set_viewport_size(size)


def open_page(page, server, path: str) -> None:
    page.goto(server.url + path)
    page.get_by_test_id("stSidebarNav").wait_for()
    wait_until_idle(page)


def script_lines(api_url: str) -> list[str]:
    return [
        MARKER,
        "import requests",
        "from lib import connection, outputStream, metadata",
        f"response = connection.get('{api_url}/basic/entries')",
        "entries = response.json()['entries']",
        "print('fetched', len(entries), 'entries')",
        "for entry in entries: outputStream.write(entry)",
        "metadata.save({'fetched': len(entries)})",
    ]


def test_four_stages_test_save_and_run_in_a_browser(page, server, shots):
    from playwright.sync_api import expect

    open_page(page, server, "/new-feed")
    nav = page.get_by_test_id("stSidebarNav").get_by_role("link")
    titles = ["Feeds", "New feed", "Edit feed", "Connections", "Runs", "Data", "Settings"]
    expect(nav).to_have_text([re.compile(f"{title}$") for title in titles])  # after each icon's name

    # Stage 1: NEW CONNECTION names it first, then its parameters are entered.
    page.get_by_role("button", name="New connection").click()
    dialog = page.get_by_role("dialog")
    enter(dialog.get_by_label("Connection name", exact=True), "DemoApi")
    wait_until_idle(page)
    dialog.get_by_text("Basic Auth").click()
    wait_until_idle(page)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("combobox", name="Select Connection")).to_have_value("DemoApi")
    expect(page.get_by_text("parameters not saved yet")).to_be_visible()
    enter(page.get_by_label("Username", exact=True), "demo")
    enter(page.get_by_label("Password", exact=True), "demo-password")
    wait_until_idle(page)
    page.get_by_role("button", name="Save parameters").click()
    wait_until_idle(page)
    expect(page.get_by_text("Edit parameters")).to_be_visible()
    shot(page, shots, "stage1-connection.png")
    page.get_by_role("button", name="Next").click()

    # Stage 2: type the script, TEST it, watch the live logs, then the preview.
    expect(page.get_by_text("Script Editor")).to_be_visible()
    page.frame_locator('iframe[title="streamlit_ace.streamlit_ace"]').locator(".ace_content").wait_for()
    type_in_ace(page, script_lines(server.demo_api_url))
    wait_until_idle(page)
    page.get_by_text("Run to completion", exact=True).click()  # off by default: the whole 100 this time
    wait_until_idle(page)
    page.get_by_role("button", name="Test").click()
    expect(page.get_by_text("Test succeeded: 100 records")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("fetched 100 entries").first).to_be_attached()
    page.get_by_role("tab", name="TABULAR").click()
    expect(page.get_by_role("tabpanel").filter(has=page.get_by_test_id("stDataFrame"))).to_be_visible()
    enter(page.get_by_label("Feed Name", exact=True), "browser_entries")
    wait_until_idle(page)
    expect(page.get_by_text("Not used by another feed")).to_be_visible()
    shot(page, shots, "stage2-import-configuration.png")

    # The draft survives a reload: same stage, same script, same test result.
    page.reload()
    page.get_by_test_id("stSidebarNav").wait_for()
    page.frame_locator('iframe[title="streamlit_ace.streamlit_ace"]').locator(".ace_content").wait_for()
    expect(page.get_by_text("Test succeeded: 100 records")).to_be_visible()
    assert MARKER in ace_text(page)
    assert page.get_by_label("Feed Name", exact=True).input_value() == "browser_entries"
    page.get_by_role("button", name="Next").click()

    # Stage 3: the embedded warehouse's destinations, with what each creates.
    expect(page.get_by_text("Local Parquet files")).to_be_visible()
    expect(page.get_by_text(re.compile("table browser_entries in the DuckDB file"))).to_be_visible()
    page.get_by_text("Local Parquet files").click()
    wait_until_idle(page)
    shot(page, shots, "stage3-destination.png")
    page.get_by_role("button", name="Next").click()

    # Stage 4: the trigger (manual unless chosen; its other choices have a test of their own
    # below, which takes the stage's screenshots); SAVE returns to the Feeds page.
    expect(page.get_by_text("Manual: the feed runs when someone clicks Run now")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Feed browser_entries saved.")).to_be_visible()

    # Run now: the run's log appears on the page and the run succeeds.
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_text("run succeeded: 100 records loaded").first).to_be_visible(timeout=60_000)
    wait_until_idle(page)
    shot(page, shots, "feeds.png")

    # The rows are on the Data page.
    page.get_by_role("link", name="Data").click()
    expect(page.get_by_text("Browse a table")).to_be_visible()
    wait_until_idle(page)
    shot(page, shots, "data.png")


SLOW_SCRIPT = """import time
from lib import outputStream
for i in range(10):
    print(f"tick {i}", flush=True)
    outputStream.write({"i": i})
    time.sleep(1)
"""


def log_lines_on_screen(page) -> int:
    """The live log's line count as shown, or -1 once the live view is gone (without waiting)."""
    captions = page.get_by_text(re.compile(r"\d+ log lines so far")).all_inner_texts()
    return int(captions[0].split()[0]) if captions else -1


def test_run_now_on_a_10_s_feed_keeps_the_ui_responsive_while_its_log_grows(page, server, shots, monkeypatch):
    from playwright.sync_api import expect

    from core.feeds import FeedSpec, create_feed
    from core.runs import get_run, list_runs
    from storage.db import dispose_all

    monkeypatch.setenv("TRIBUTARY_DATA_DIR", str(server.data_dir))  # the server's own store
    create_feed(FeedSpec(name="slow_feed", script=SLOW_SCRIPT, tags=["slow"]))
    open_page(page, server, "/")

    row = page.get_by_test_id("stHorizontalBlock").filter(has_text="slow_feed")
    row.get_by_role("button", name="Run now").click()
    expect(page.get_by_text("Run of slow_feed")).to_be_visible()
    [run] = list_runs("slow_feed")
    expect(page.get_by_text(re.compile(r"\d+ log lines so far"))).to_be_visible()
    first = log_lines_on_screen(page)

    # The page answers while the run goes on: filtering the table takes effect.
    page.get_by_placeholder("Filter by name").fill("slow")
    page.get_by_placeholder("Filter by name").press("Enter")
    expect(page.get_by_text("browser_entries")).to_have_count(0)
    assert get_run(run.id).status == "running", "the run ended before the page answered"

    # The log grows on screen while the run is still running.
    wait_until(lambda: get_run(run.id).status == "running" and log_lines_on_screen(page) > first, 20,
               f"the log did not grow on screen while the run was running (from {first} lines)", interval_s=0.2)

    expect(page.get_by_text("run succeeded: 10 records loaded").first).to_be_visible(timeout=60_000)
    wait_until_idle(page)
    shot(page, shots, "feeds-run.png")
    dispose_all()


def test_dependencies_become_tags_with_tab_or_enter(page, server):
    from playwright.sync_api import expect

    open_page(page, server, "/new-feed")
    old_url = page.url
    page.get_by_role("button", name="Start over").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, start over").click()
    page.wait_for_url(lambda url: url != old_url)  # a new draft, with widgets of its own
    wait_until_idle(page)
    page.get_by_role("button", name="Next").click()
    wait_until_idle(page)
    field = page.get_by_role("combobox", name="Install Dependency")
    field.click()
    page.keyboard.type("requests>=2.32")
    page.keyboard.press("Tab")
    wait_until_idle(page)
    field.click()
    page.keyboard.type("not a package!")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    tags = page.get_by_test_id("stMultiSelect").filter(has_text="Install Dependency")
    expect(tags).to_contain_text("requests>=2.32")
    expect(tags).to_contain_text("not a package!")
    expect(page.get_by_text("is not a package pip can install").first).to_be_visible()


def draft_at_trigger_stage(server, monkeypatch, name: str) -> str:
    """A new feed whose first three stages are done, saved as a draft in the server's store
    (as a user who left it there finds it again); returns the draft's id."""
    from app_pages.view_models import feed_editor

    monkeypatch.setenv("TRIBUTARY_DATA_DIR", str(server.data_dir))
    draft = feed_editor.new_draft("local")
    draft.script = "from lib import outputStream\noutputStream.write({'id': 1})\n"
    draft.feed_name, draft.stage = name, 3
    draft.last_test = {"ok": True, "fingerprint": feed_editor.fingerprint(draft), "records": [], "logs": []}
    feed_editor.persist(draft)
    return draft.id


def choose(page, group: str, option: str) -> None:
    """Click an option of the radio group with this label."""
    page.get_by_test_id("stRadio").filter(has_text=group).get_by_text(option, exact=True).click()
    wait_until_idle(page)


def token_on_screen(page, feed: str) -> str:
    panel = page.get_by_test_id("stVerticalBlock").filter(has_text=f"Webhook token of {feed}.").last
    return panel.get_by_test_id("stCode").first.inner_text().strip()


def trigger_call(server, feed: str, token: str) -> int:
    import requests

    return requests.post(f"{server.url}/api/feeds/{feed}/trigger", headers={"X-Tributary-Token": token}, json={},
                         timeout=10).status_code


def test_trigger_stage_previews_a_cron_schedule_and_shows_a_webhook_token_once(page, server, shots, monkeypatch):
    from playwright.sync_api import expect

    from core.runs import list_runs, wait_for_run
    from storage.db import dispose_all

    open_page(page, server, f"/new-feed?draft={draft_at_trigger_stage(server, monkeypatch, 'browser_hook')}")
    expect(page.get_by_role("heading", name="Trigger")).to_be_visible()

    # Advanced schedule: the expression is checked as it is typed, the wrong field named.
    choose(page, "Run this feed", "Schedule")
    choose(page, "Schedule", "Advanced (cron)")
    expression = page.get_by_label("Cron expression", exact=True)
    expression.fill("0 0 9 ? * 8")  # no Enter: the field sends what is typed by itself
    expect(page.get_by_text("Not valid: the day of week field: 8 is out of range 1-7 (SUN-SAT)")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_be_disabled()
    expression.fill("0 0 12 1 * ? 2099")
    expect(page.get_by_text("Valid Quartz cron expression")).to_be_visible()
    wait_until_idle(page)
    zone = page.get_by_role("combobox", name="Time zone")
    zone.click()
    page.keyboard.type("Europe/London")
    page.keyboard.press("Enter")
    expect(zone).to_have_value("Europe/London")
    wait_until_idle(page)
    described = "At 12:00, on day 1 of the month, only in 2099 (Europe/London)"
    expect(page.get_by_text(described, exact=True)).to_be_visible()
    expect(page.get_by_text("Wed 2099-04-01 12:00 Europe/London (11:00 UTC)")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_be_enabled()
    shot(page, shots, "stage4-trigger.png")

    # Basic schedule (every N minutes) and run once at a time are previewed the same way.
    choose(page, "Schedule", "Basic")
    choose(page, "Repeat", "Every N minutes or hours")
    expect(page.get_by_text("Every 15 minutes").first).to_be_visible()
    expect(page.get_by_text("Next 5 runs:")).to_be_visible()
    choose(page, "Run this feed", "Run once")
    choose(page, "Run once", "At a date and time")
    expect(page.get_by_text("Next run:")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_be_enabled()

    # Webhook: the URL and how to call it; SAVE generates the token and shows it once.
    choose(page, "Run this feed", "Webhook")
    expect(page.get_by_text("/api/feeds/browser_hook/trigger").first).to_be_visible()
    expect(page.get_by_text("409 when a run of this feed is already in progress")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Feed browser_hook saved.")).to_be_visible()
    token = token_on_screen(page, "browser_hook")
    assert trigger_call(server, "browser_hook", token) == 202
    wait_for_run(list_runs("browser_hook")[0].id, timeout_s=60)
    page.get_by_role("button", name="I have copied it: hide the token").click()
    expect(page.get_by_text("Webhook token of browser_hook.")).to_have_count(0)

    # Regenerate on the feed's stage 4: the new token is shown there, the old one is refused.
    open_page(page, server, "/edit-feed?feed=browser_hook")
    for stage in ("Import Configuration", "Destination", "Trigger"):
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_role("heading", name=stage)).to_be_visible()
        wait_until_idle(page)
    expect(page.get_by_text("cannot show it again")).to_be_visible()
    page.get_by_role("button", name="Regenerate token").click()
    page.get_by_role("button", name="Yes, regenerate the token").click()
    expect(page.get_by_text("Webhook token of browser_hook.")).to_be_visible()
    wait_until_idle(page)
    new_token = token_on_screen(page, "browser_hook")
    assert new_token != token
    assert trigger_call(server, "browser_hook", token) == 401
    assert trigger_call(server, "browser_hook", new_token) == 202
    shot(page, shots, "stage4-webhook.png")
    wait_for_run(list_runs("browser_hook")[0].id, timeout_s=60)
    dispose_all()


# ---------------------------------------------------------------- living in the app

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
    # The table's rows, newest first, 35 px each under the header; the row marker is at the left.
    row_index = [r.id for r in list_runs(limit=200)].index(run.id)
    page.mouse.click(box["x"] + 18, box["y"] + 35 * (row_index + 1) + 17)
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


STATEFUL = ("from lib import outputStream, metadata\n"
            "n = metadata.get('next', 0)\n"
            "record = {'id': n}\n"
            "if n >= 1:\n    record['tag'] = 'new'\n"
            "outputStream.write(record)\nmetadata.save({'next': n + 1})\n")


def test_the_state_workbench_edits_resets_and_rewinds_and_a_run_shows_its_schema_change(page, server, store):
    from playwright.sync_api import expect

    from core.bootstrap import execute_run
    from core.feeds import FeedSpec, create_feed
    from core.runs import create_run
    from core.state import current_state, state_history

    create_feed(FeedSpec(name="stateful", script=STATEFUL))
    first = execute_run(create_run("stateful").id)
    second = execute_run(create_run("stateful").id)  # adds the column tag
    assert (first.status, second.status) == ("succeeded", "succeeded"), (first.error, second.error)

    open_page(page, server, "/edit-feed?feed=stateful")
    page.get_by_role("tab", name="State", exact=True).click()
    state_box = page.get_by_label("New state (a JSON object)")
    state_box.fill('{"next": 40}')
    state_box.press("Control+Enter")  # hands a text area's value to Streamlit
    wait_until_idle(page)
    expect(page.get_by_text("What changes")).to_be_visible()
    enter(page.get_by_label("Why (kept in the history)").first, "replay from 40")
    wait_until_idle(page)
    page.get_by_role("button", name="Save state").click()
    expect(page.get_by_text("State saved.")).to_be_visible()
    assert current_state("stateful") == {"next": 40}
    assert state_history("stateful")[-1].note == "replay from 40"

    page.get_by_role("tab", name="State", exact=True).click()
    page.get_by_role("tab", name="Reset").click()
    page.get_by_role("button", name="Reset to {}").click()
    expect(page.get_by_text("State reset to {}.")).to_be_visible()
    assert current_state("stateful") == {}

    page.get_by_role("tab", name="State", exact=True).click()
    page.get_by_role("tab", name="Rewind").click()
    page.get_by_role("combobox", name="Rewind to the state").click()
    page.get_by_role("option", name=re.compile(f"after run {first.id}")).click()
    wait_until_idle(page)
    if not page.get_by_role("button", name=re.compile(r"Rewind$")).is_visible():  # the rerun reopened the first tab
        page.get_by_role("tab", name="State", exact=True).click()
        page.get_by_role("tab", name="Rewind").click()
    page.get_by_role("button", name=re.compile(r"Rewind$")).click()
    expect(page.get_by_text("State rewound.")).to_be_visible()
    assert current_state("stateful") == {"next": 1}

    open_page(page, server, f"/runs?run={second.id}")
    page.get_by_role("tab", name="Destinations").click()
    expect(page.get_by_text("column tag added (VARCHAR)", exact=True)).to_be_visible()
