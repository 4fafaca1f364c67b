"""The state workbench on Edit feed: the current state and its history, an edit with its diff
before saving, reset, rewind, each kept with who and why; refused while a run is in progress."""

from __future__ import annotations

import json

from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed
from core.runs import create_run
from core.state import current_state, state_history
from tests.ui.conftest import button, errors, labelled, texts

SCRIPT = ("from lib import outputStream, metadata\n"
          "n = metadata.get('next', 0)\noutputStream.write({'id': n})\nmetadata.save({'next': n + 1})\n")


def open_state(app):
    return app("edit", feed="orders")


def test_an_edit_shows_its_diff_and_is_kept_with_who_and_why(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT))
    execute_run(create_run("orders").id)
    at = open_state(app)
    assert any(json.loads(j.value) == {"next": 1} for j in at.json)  # the current state, shown
    assert f"run {state_history('orders')[0].run_id}" in at.dataframe[0].value.to_string()
    labelled(at.text_area, "New state (a JSON object)").set_value('{"next": 40, "since": "2026-01-01"}').run()
    shown = at.dataframe[-1].value.to_dict("records")
    assert {"Key": "next", "Change": "changed", "Now": "1", "After": "40"} in shown
    assert {"Key": "since", "Change": "added", "Now": "null", "After": '"2026-01-01"'} in shown
    [why] = [w for w in at.text_input if w.key == "state:orders:why"]
    why.set_value("the API re-sent 40 onwards").run()
    at = button(at, "Save state").click().run()
    assert current_state("orders") == {"next": 40, "since": "2026-01-01"}
    last = state_history("orders")[-1]
    assert (last.reason, last.changed_by, last.note) == ("edit", "local", "the API re-sent 40 onwards")
    assert "State saved." in texts(at)


def test_reset_and_rewind(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT))
    first = execute_run(create_run("orders").id)
    execute_run(create_run("orders").id)
    at = open_state(app)
    at = button(at, "Reset to {}").click().run()
    assert current_state("orders") == {}
    labelled(at.selectbox, "Rewind to the state").set_value(first.id).run()
    at = button(at, "Rewind").click().run()
    assert current_state("orders") == {"next": 1}
    assert [h.reason for h in state_history("orders")][-2:] == ["reset", "rewind"]


def test_a_change_during_a_run_is_refused_with_the_reason(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT))
    execute_run(create_run("orders").id)
    run = create_run("orders")  # queued: in progress
    at = open_state(app)
    at = button(at, "Reset to {}").click().run()
    assert any(f"has a run in progress ({run.id})" in e for e in errors(at)), errors(at)
    assert current_state("orders") == {"next": 1}


def test_run_with_a_state_and_full_refresh_start_their_runs(app):
    from tests.ui.conftest import wait_for_runs

    create_feed(FeedSpec(name="orders", script=SCRIPT))
    execute_run(create_run("orders").id)
    at = open_state(app)
    labelled(at.text_area, "Start from (a JSON object)").set_value('{"next": 50}').run()
    at = button(at, "Run with this state").click().run()
    backfill = wait_for_runs("orders")
    assert (backfill.status, backfill.state_before, backfill.options) == (
        "succeeded", {"next": 50}, {"state": {"next": 50}, "commit_state": False})
    assert current_state("orders") == {"next": 1}  # not asked to become current

    at = button(at, "Start a full refresh").click().run()
    refresh = wait_for_runs("orders")
    assert refresh.id != backfill.id and refresh.options == {"full_refresh": True}
    assert (refresh.status, refresh.state_before) == ("succeeded", {})
    assert current_state("orders") == {"next": 1}  # it started from {}: 0, then saved 1
