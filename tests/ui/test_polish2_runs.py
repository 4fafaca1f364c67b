"""The Runs page's run view: a run is chosen by a click on its row (no dropdown), and the view
shows its trigger, the webhook payload that started it, its attempts, state before and after,
the result per destination, what its watchers were sent, and its log."""

import json

from core.bootstrap import start_run
from core.feeds import FeedSpec, create_feed
from core.runs import list_runs
from tests.helpers import wait_until
from tests.ui.conftest import labelled, texts

ONE = "from lib import outputStream, metadata\noutputStream.write({'id': 1})\nmetadata.save({'seen': 1})\n"
FAILING = "from lib import outputStream\nraise KeyError('cursor')\n"


def click_row(at, row: int):
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [row], "columns": []}}
    return at.run()


def test_a_click_on_a_row_opens_that_run_and_there_is_no_run_dropdown(app):
    create_feed(FeedSpec(name="orders", script=ONE))
    create_feed(FeedSpec(name="refunds", script=FAILING))
    first = start_run("orders", wait=True)
    start_run("refunds", wait=True)
    at = app("runs")
    assert [s.label for s in at.selectbox] == ["Feed"]  # no "Run" dropdown
    assert "Click a row to see that run." in texts(at)
    assert at.subheader[0].value.startswith("Run ")
    rows = list(at.dataframe[0].value["Run"])
    click_row(at, rows.index(first.id))
    assert not at.exception
    assert at.subheader[0].value == f"Run {first.id}"
    assert at.query_params["run"] in (first.id, [first.id])
    # A run that starts meanwhile pushes the rows down: the run chosen stays on screen.
    start_run("orders", wait=True)
    at.run()
    assert at.subheader[0].value == f"Run {first.id}"


def test_the_run_view_shows_trigger_payload_attempts_state_destinations_and_deliveries(app):
    create_feed(FeedSpec(name="flaky", script=FAILING, retries=1, retry_backoff_s=600))
    first = start_run("flaky", trigger="webhook", payload={"order": 42, "why": "new order"}, wait=True)
    [retry] = wait_until(lambda: [r for r in list_runs("flaky") if r.parent_run_id == first.id], 15,
                         "no retry was queued")
    at = app("runs", run=first.id)
    page = texts(at)
    assert [t.label for t in at.tabs] == ["Log", "State", "Trigger", "Attempts", "Destinations", "Deliveries"]
    assert "**Trigger:** webhook" in page
    assert "**Webhook payload**" in page
    assert {"order": 42, "why": "new order"} in [json.loads(j.value) for j in at.json]
    attempts = at.dataframe[1].value
    assert list(attempts["Attempt"]) == [1, 2]
    assert list(attempts["Run"]) == [f"{first.id}  (this run)", retry.id]
    assert list(attempts["Status"]) == ["failed", "queued"]
    assert "No watcher was notified about this run." in page
    assert "KeyError" in page  # the log and the error


def test_a_succeeded_run_shows_its_destinations_and_state(app):
    create_feed(FeedSpec(name="orders", script=ONE))
    run = start_run("orders", wait=True)
    at = app("runs", run=run.id)
    assert {"seen": 1} in [json.loads(j.value) for j in at.json]  # the state after
    [destinations] = [d.value for d in at.dataframe if "Destination" in d.value.columns]
    assert len(destinations) >= 1
    assert "The only attempt: no retry." in texts(at)
    assert "**Trigger:** manual" in texts(at)


def test_filters_that_match_no_run_say_so_and_keep_the_run_on_screen(app):
    create_feed(FeedSpec(name="orders", script=ONE))
    run = start_run("orders", wait=True)
    at = app("runs", run=run.id)
    labelled(at.multiselect, "Status").set_value(["failed"]).run()
    assert "No run matches these filters." in texts(at)
    assert "No runs yet" not in texts(at)
    assert at.subheader[0].value == f"Run {run.id}"
