"""The Feeds page: each feed with its last run, next run, records and tags; filters by name,
tag and status; Run now (the page stays usable while the run goes on, its log growing on
screen), Test, Edit, Pause/Resume, and Delete with the choice to keep or drop the data."""

import re
import time

from core.feeds import FeedSpec, create_feed, get_feed
from core.runs import cancel_run, get_run, list_runs, wait_for_run
from core.bootstrap import start_run
from app_pages.view_models.warehouse_browser import list_tables
from tests.helpers import wait_until
from tests.ui.conftest import button, labelled, landed_on, texts, wait_for_test

THREE = "from lib import outputStream\nfor i in range(3):\n    outputStream.write({'i': i})\n"
FAILS = "raise RuntimeError('upstream down')\n"
SLOW = (
    "import time\nfrom lib import outputStream\n"
    "for i in range(10):\n    print(f'tick {i}', flush=True)\n    outputStream.write({'i': i})\n    time.sleep(1)\n"
)


def feed_names(at) -> list[str]:
    """The feeds listed, in order (each row starts with the feed's name in bold)."""
    return [m.value.split("**")[1] for m in at.markdown if m.value.startswith("**") and "Run of" not in m.value
            and "Test of" not in m.value]


def status_badges(at) -> list[str]:
    return [re.search(r"-badge\[(?::material/\w+: )?(.+)\]", m.value).group(1)
            for m in at.markdown if "-badge[" in m.value]


def row_buttons(at, feed: str) -> dict:
    return {b.label: b for b in at.button if str(b.key).endswith(f":{feed}")}


def test_the_table_shows_last_run_next_run_records_and_tags(app):
    create_feed(FeedSpec(name="orders", script=THREE, tags=["sales", "daily"]))
    create_feed(FeedSpec(name="broken", script=FAILS))
    create_feed(FeedSpec(name="fresh", script=THREE))
    start_run("orders", wait=True)
    start_run("broken", wait=True)
    at = app("feeds")
    assert feed_names(at) == ["broken", "fresh", "orders"]
    page = texts(at)
    assert status_badges(at) == ["failed", "never run", "succeeded"]
    assert "sales, daily" in page
    assert "3" in [m.value for m in at.markdown]  # records loaded by the last run of orders
    assert [m.value for m in at.markdown].count("manual") == 3  # next run: all three run by hand


def test_filters_by_name_tag_and_status(app):
    create_feed(FeedSpec(name="orders", script=THREE, tags=["sales"]))
    create_feed(FeedSpec(name="refunds", script=FAILS, tags=["sales"]))
    create_feed(FeedSpec(name="weather", script=THREE, tags=["ops"]))
    start_run("refunds", wait=True)
    at = app("feeds")
    labelled(at.text_input, "Name").set_value("ORD").run()
    assert feed_names(at) == ["orders"]
    labelled(at.text_input, "Name").set_value("").run()
    labelled(at.multiselect, "Tags").set_value(["sales"]).run()
    assert feed_names(at) == ["orders", "refunds"]
    labelled(at.multiselect, "Status").set_value(["failed"]).run()
    assert feed_names(at) == ["refunds"]
    labelled(at.multiselect, "Tags").set_value(["ops"]).run()
    assert feed_names(at) == []
    assert "No feed matches these filters." in texts(at)


def test_pause_and_resume(app):
    create_feed(FeedSpec(name="orders", script=THREE))
    at = app("feeds")
    row_buttons(at, "orders")["Pause"].click().run()
    assert get_feed("orders").paused
    assert status_badges(at) == ["never run", "paused"]
    assert "paused" in [m.value for m in at.markdown]  # as its next run
    row_buttons(at, "orders")["Resume"].click().run()
    assert not get_feed("orders").paused


def test_run_now_returns_at_once_and_the_log_grows_while_the_run_goes_on(app):
    create_feed(FeedSpec(name="slow", script=SLOW))
    at = app("feeds")
    clicked = time.monotonic()
    row_buttons(at, "slow")["Run now"].click().run()
    assert time.monotonic() - clicked < 5, "the page waited for the 10 s run"
    assert "Run of slow" in texts(at)
    [run] = list_runs("slow")

    def page_once_it_shows(line: str):
        page = texts(at.run())
        return page if line in page else None

    early = wait_until(lambda: page_once_it_shows("tick 0"), 15, "the run's first log line did not reach the page",
                       interval_s=0.2)
    assert row_buttons(at, "slow")["Run now"].disabled  # one run at a time
    wait_until(lambda: texts(at.run()).count("tick ") > early.count("tick "), 15, "the log did not grow",
               interval_s=0.2)
    assert get_run(run.id).status == "running"
    assert wait_for_run(run.id, timeout_s=30).status == "succeeded"


def test_run_now_waits_while_the_feed_has_an_active_run(app):
    create_feed(FeedSpec(name="slow", script=SLOW))
    run = start_run("slow")
    at = app("feeds")
    assert row_buttons(at, "slow")["Run now"].disabled
    assert row_buttons(at, "slow")["Run now"].help == "A run is in progress"
    cancel_run(run.id)
    assert wait_for_run(run.id, timeout_s=30).status == "cancelled"
    at.run()
    assert not row_buttons(at, "slow")["Run now"].disabled


def test_test_shows_the_preview_and_loads_nothing(app):
    create_feed(FeedSpec(name="orders", script=THREE))
    at = app("feeds")
    row_buttons(at, "orders")["Test"].click().run()
    wait_for_test(at, "feeds-page-test")
    assert "Test of orders" in texts(at)
    assert "Test succeeded: 3 records" in texts(at)
    assert list_runs("orders") == []
    assert list_tables().empty


def test_edit_opens_the_feed_in_the_editor(app):
    create_feed(FeedSpec(name="orders", script=THREE))
    at = app("feeds")
    row_buttons(at, "orders")["Edit"].click().run()
    landed_on(at, "edit", "Edit feed")
    at.query_params["feed"] = "orders"
    at.run()
    assert labelled(at.selectbox, "Feed").value == "orders"


def test_delete_asks_and_keeps_the_data_unless_told(app):
    create_feed(FeedSpec(name="orders", script=THREE))
    create_feed(FeedSpec(name="refunds", script=THREE))
    start_run("orders", wait=True)
    start_run("refunds", wait=True)
    at = app("feeds")
    row_buttons(at, "orders")["Delete"].click().run()
    assert "Delete the feed **orders** and its run history?" in texts(at)
    assert labelled(at.checkbox, "Also delete its data in the warehouse").value is False
    button(at, "Yes, delete").click().run()
    assert "Feed orders deleted; its data stays in the warehouse." in texts(at)
    assert feed_names(at) == ["refunds"]
    assert "orders" in list(list_tables()["table"])

    row_buttons(at, "refunds")["Delete"].click().run()
    labelled(at.checkbox, "Also delete its data in the warehouse").check().run()
    labelled(at.text_input, "Type refunds to delete the feed with its data").set_value("refunds").run()
    button(at, "Yes, delete").click().run()
    assert "Feed refunds deleted with its data." in texts(at)
    assert "refunds" not in list(list_tables()["table"])
