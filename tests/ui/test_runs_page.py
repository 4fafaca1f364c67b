"""The Runs page: history overall and per feed (status, start, duration, records), and a
run's detail: its log (live while it runs, with Cancel), the state before and after, the
error with its line."""

import json

from core.feeds import FeedSpec, create_feed
from core.runs import wait_for_run
from core.bootstrap import start_run
from core.state import reset_state
from tests.helpers import wait_until
from tests.ui.conftest import button, errors, labelled, texts

INCREMENTAL = (
    "from lib import outputStream, metadata\n"
    "start = metadata.get('next', 0)\n"
    "print(f'from {start}')\n"
    "for i in range(start, start + 5):\n    outputStream.write({'i': i})\n"
    "metadata.save({'next': start + 5})\n"
)
FAILING = "from lib import outputStream\noutputStream.write({'a': 1})\nraise KeyError('cursor')\n"
SLOW = "import time\nfor i in range(40):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.25)\n"


def test_history_overall_and_per_feed(app):
    create_feed(FeedSpec(name="orders", script=INCREMENTAL))
    create_feed(FeedSpec(name="refunds", script=FAILING))
    start_run("orders", wait=True)
    start_run("orders", wait=True)
    start_run("refunds", wait=True)
    at = app("runs")
    table = at.dataframe[0].value
    assert list(table["Feed"]) == ["refunds", "orders", "orders"]
    assert list(table["Status"]) == ["failed", "succeeded", "succeeded"]
    assert list(table["Records loaded"]) == [0, 5, 5]
    assert all(table["Duration"].str.endswith(" s")) and all(table["Started"].str.endswith("UTC"))
    labelled(at.selectbox, "Feed").set_value("orders").run()
    assert list(at.dataframe[0].value["Feed"]) == ["orders", "orders"]
    labelled(at.selectbox, "Feed").set_value("").run()
    labelled(at.multiselect, "Status").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["Feed"]) == ["refunds"]


def test_a_runs_detail_shows_its_log_and_the_state_before_and_after(app):
    create_feed(FeedSpec(name="orders", script=INCREMENTAL))
    start_run("orders", wait=True)
    second = start_run("orders", wait=True)
    at = app("runs", run=second.id)
    assert at.subheader[0].value == f"Run {second.id}"
    page = texts(at)
    assert "from 5" in page  # the log
    assert "run succeeded: 5 records loaded" in page
    assert "Records loaded: 5" in page
    state_before, state_after = [json.loads(j.value) for j in at.json]
    assert (state_before, state_after) == ({"next": 5}, {"next": 10})


def test_a_failed_run_shows_its_error_and_line(app):
    create_feed(FeedSpec(name="refunds", script=FAILING))
    run = start_run("refunds", wait=True)
    at = app("runs", run=run.id)
    assert any("KeyError: 'cursor'" in e and "line 3" in e for e in errors(at))


def test_the_log_of_an_active_run_grows_and_the_run_can_be_cancelled(app):
    create_feed(FeedSpec(name="slow", script=SLOW))
    reset_state("slow", {})
    run = start_run("slow")
    wait_until(lambda: "tick 1" in open_log(run.id), 10, "the run logged no second line")
    at = app("runs", run=run.id)
    first = lines_so_far(at)
    wait_until(lambda: lines_so_far(at.run()) > first, 10, f"the log on the page stayed at {first} lines",
               interval_s=0.2)
    button(at, "Cancel run").click().run()
    assert wait_for_run(run.id, timeout_s=15).status == "cancelled"
    at.run()
    assert "cancelled" in texts(at)


def open_log(run_id: str) -> str:
    from core.runs import read_log

    return read_log(run_id)[0]


def lines_so_far(at) -> int:
    [caption] = [c.value for c in at.caption if c.value.endswith("log lines so far")]
    return int(caption.split()[0])


def test_no_runs_yet(app):
    at = app("runs")
    assert "No runs yet. Start one with Run now on the Feeds page." in texts(at)


def test_the_run_view_counts_the_scripts_http_requests(app, demo_api):
    from core.bootstrap import execute_run
    from core.runs import create_run
    from tests.helpers import example

    create_feed(FeedSpec(name="data", script=example("incremental_get_data.py", demo_api.url)))
    finished = execute_run(create_run("data").id)
    at = app("runs", run=finished.id)
    assert "**HTTP requests:** 1 (0 retries, 0 waits for 0.0 s," in texts(at)
