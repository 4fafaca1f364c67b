"""Schema history on Edit feed's Schema tab and on a run's Destinations tab, and the schema
policy chooser in the Destination stage."""

from __future__ import annotations

from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed, get_feed
from core.runs import create_run
from tests.ui.conftest import button, labelled, texts

SCRIPT = """
from lib import outputStream, metadata
step = metadata.get("step", 0)
outputStream.write({"id": step, "price": 10 if step == 0 else 10.5, **({"tag": "new"} if step else {})})
metadata.save({"step": step + 1})
"""


def test_the_schema_tab_lists_each_change_by_run_newest_first(app):
    create_feed(FeedSpec(name="prices", script=SCRIPT))
    first = execute_run(create_run("prices").id)
    second = execute_run(create_run("prices").id)
    assert second.status == "succeeded", second.error
    at = app("edit", feed="prices")
    shown = texts(at)
    assert "Schema policy: **Evolve: add and widen columns**" in shown
    assert "column tag added (VARCHAR)" in shown and "column price widened from BIGINT to DOUBLE" in shown
    assert shown.index(second.id) < shown.index(first.id)  # newest first


def test_a_run_shows_its_schema_change_on_its_destinations_tab(app):
    create_feed(FeedSpec(name="prices", script=SCRIPT))
    execute_run(create_run("prices").id)
    second = execute_run(create_run("prices").id)
    at = app("runs", run=second.id)
    assert "column price widened from BIGINT to DOUBLE" in texts(at)


def test_the_destination_stage_chooses_the_schema_policy(app):
    create_feed(FeedSpec(name="prices", script=SCRIPT))
    at = app("edit", feed="prices")
    for _ in range(2):
        button(at, "Next").click().run()
    chooser = labelled(at.selectbox, "Schema changes")
    assert chooser.value == "evolve"
    chooser.set_value("freeze").run()
    assert "fails before loading anything" in texts(at)
    button(at, "Next").click().run()
    button(at, "Save").click().run()
    assert get_feed("prices").schema_policy == "freeze"
