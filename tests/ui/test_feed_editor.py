"""Stage 2, Import Configuration, and the rules that gate NEXT: Peak's template in the Ace
editor, dependencies as tags, TEST with live logs and the preview, errors with their line,
the load type with a primary key from the preview, the feed name's rules as the user types."""

import json
import time

import pytest

from core.feeds import PEAK_TEMPLATE
from app_pages.view_models.test_sessions import current_test
from tests.ui.conftest import (
    ace_editors,
    button,
    current_draft,
    errors,
    labelled,
    texts,
    type_script,
    wait_for_test,
)

RECORDS_25 = (
    "from lib import outputStream, metadata\n"
    "print('writing 25 records')\n"
    "for i in range(25):\n"
    "    outputStream.write({'id': i, 'name': f'n{i}', 'tags': ['a', 'b']})\n"
    "metadata.save({'next': 25})\n"
)


def at_stage_2(app):
    at = app("new")
    button(at, "Next").click().run()  # no connection is a valid choice for stage 1
    assert any(s.value == "Import Configuration" for s in at.subheader)
    return at


def run_test(at, script=RECORDS_25):
    type_script(at, script)
    button(at, "Test").click().run()
    return wait_for_test(at, current_draft(at).id)


def test_the_editor_opens_on_peaks_template_in_python_mode(app):
    at = at_stage_2(app)
    [editor] = ace_editors(at)
    assert editor["defaultValue"] == PEAK_TEMPLATE
    assert "from lib import outputStream, metadata" in editor["defaultValue"]
    assert editor["mode"] == "python"
    assert editor["autoUpdate"] is True  # every change reaches the draft, not only on Ctrl+Enter


def test_a_successful_test_shows_at_most_10_records_the_count_the_metadata_and_the_duration(app):
    at = at_stage_2(app)
    labelled(at.toggle, "Run to completion").set_value(True).run()
    at = run_test(at)
    page = texts(at)
    assert "Test succeeded: 25 records" in page
    assert "Records: 25" in page and "Shown: 10" in page
    assert "Duration:" in page
    assert "writing 25 records" in page  # the script's output, in the logs
    assert [t.label for t in at.tabs] == ["JSON", "TABULAR"]
    [records] = [json.loads(j.value) for j in at.json if json.loads(j.value) and isinstance(json.loads(j.value), list)]
    assert len(records) == 10 and records[0] == {"id": 0, "name": "n0", "tags": ["a", "b"]}
    table = at.dataframe[0].value
    assert len(table) == 10 and list(table.columns) == ["id", "name", "tags"]
    assert table["tags"][0] == '["a", "b"]'  # nested values as JSON, as the warehouse stores them
    assert {"next": 25} in [json.loads(j.value) for j in at.json]


def test_without_run_to_completion_the_test_stops_once_the_preview_is_full(app):
    at = at_stage_2(app)
    assert labelled(at.toggle, "Run to completion").value is False  # off by default
    at = run_test(at)
    assert "stopped after the first 10 records" in texts(at)
    assert "did not call metadata.save()" in texts(at)


def test_logs_appear_while_the_test_runs_and_the_test_button_waits(app):
    at = at_stage_2(app)
    type_script(at, "import time\nfor i in range(16):\n    print(f'step {i}', flush=True)\n    time.sleep(0.25)\n")
    button(at, "Test").click().run()
    session = current_test(current_draft(at).id)
    deadline = time.monotonic() + 10
    while "step 1" not in "\n".join(session.lines()) and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    assert session.running, "the script ended before the page could show it running"
    assert "Testing…" in texts(at)
    assert "step 0" in texts(at)
    assert button(at, "Test").disabled
    wait_for_test(at, current_draft(at).id)
    assert "Test succeeded: 0 records" in texts(at)
    assert "step 15" in texts(at)  # the logs stay after the test


def test_an_error_shows_its_message_and_the_line_in_the_script(app):
    at = run_test(at_stage_2(app), "from lib import outputStream\nx = 1\nraise ValueError('the API said no')\n")
    assert any("Test failed: ValueError: the API said no" in e for e in errors(at))
    page = texts(at)
    assert "line 3" in page
    assert "   3 | raise ValueError('the API said no')" in page
    [editor] = ace_editors(at)
    assert editor["annotations"] == [{"row": 2, "column": 0, "type": "error",
                                      "text": "ValueError: the API said no (script.py, line 3)"}]
    assert button(at, "Next").disabled


def test_next_waits_for_a_successful_test_of_this_version_and_a_valid_name(app):
    at = at_stage_2(app)
    assert button(at, "Next").disabled
    at = run_test(at)
    assert button(at, "Next").disabled  # no feed name yet
    labelled(at.text_input, "Feed Name").set_value("numbers").run()
    assert not button(at, "Next").disabled
    type_script(at, RECORDS_25 + "print('changed')\n")
    assert button(at, "Next").disabled
    assert "changed: test again" in texts(at)
    at = run_test(at, RECORDS_25 + "print('changed')\n")
    assert not button(at, "Next").disabled


@pytest.mark.parametrize(("name", "message"), [
    ("orders-2024", ":material/close: Only letters, digits and underscores]"),
    ("2024_orders", ":material/close: Starts with a letter]"),
    ("orders_", ":material/close: Does not end with an underscore]"),
    ("o" * 51, ":material/close: At most 50 characters (got 51)]"),
])
def test_each_feed_name_rule_is_checked_as_the_user_types(app, name, message):
    at = run_test(at_stage_2(app))
    field = labelled(at.text_input, "Feed Name")
    assert field.proto.live_debounce_ms > 0  # checked while typing, not only on Enter
    field.set_value(name).run()
    assert message in texts(at)
    assert button(at, "Next").disabled


def test_a_feed_name_already_in_use_is_refused(app):
    from core.feeds import FeedSpec, create_feed

    create_feed(FeedSpec(name="taken"))
    at = run_test(at_stage_2(app))
    labelled(at.text_input, "Feed Name").set_value("taken").run()
    assert ":material/close: Not used by another feed]" in texts(at)
    assert button(at, "Next").disabled


def test_the_rules_of_a_good_name_are_all_ticked(app):
    at = run_test(at_stage_2(app))
    labelled(at.text_input, "Feed Name").set_value("orders_2024").run()
    page = texts(at)
    for rule in ("Only letters, digits and underscores", "Starts with a letter", "Does not end with an underscore",
                 "At most 50 characters", "Not used by another feed"):
        assert f":green[:material/check: {rule}]" in page


@pytest.mark.parametrize(("dependency", "message"), [
    ("requests>=", "is not a package pip can install: write a package name, optionally with a version"),
    ("-e git+https://example.com/x.git", "pip options are not allowed, only package specifiers"),
])
def test_dependencies_are_entered_as_tags_and_checked_as_requirement_specifiers(app, dependency, message):
    at = at_stage_2(app)
    deps = labelled(at.multiselect, "Install Dependency")
    assert deps.proto.accept_new_options
    deps.set_value(["pandas>=2.2", dependency]).run()
    assert message in texts(at)
    assert "'pandas>=2.2'" not in texts(at)  # the valid tag has no complaint
    button(at, "Test").click().run()
    assert any(message in e for e in errors(at))  # TEST refuses to start
    assert current_test(current_draft(at).id) is None


def test_upsert_takes_its_primary_key_from_the_preview_columns(app):
    at = run_test(at_stage_2(app))
    labelled(at.text_input, "Feed Name").set_value("people").run()
    labelled(at.radio, "Load Type").set_value("upsert").run()
    assert "Primary key: is required for Upsert: name one or more fields" in texts(at)
    assert button(at, "Next").disabled
    key = labelled(at.multiselect, "Primary key fields")
    assert key.options == ["id", "name", "tags"]
    key.set_value(["id"]).run()
    assert not button(at, "Next").disabled
    button(at, "Next").click().run()
    # Parquet files cannot upsert: the destination says so and NEXT waits.
    labelled(at.checkbox, "Local Parquet files").check().run()
    assert "Local Parquet files does not support the load type Upsert" in texts(at)
    assert button(at, "Next").disabled
    labelled(at.checkbox, "Local Parquet files").uncheck().run()
    assert not button(at, "Next").disabled


def test_a_feed_needs_at_least_one_destination(app):
    at = run_test(at_stage_2(app))
    labelled(at.text_input, "Feed Name").set_value("nowhere").run()
    button(at, "Next").click().run()
    labelled(at.checkbox, "DuckDB warehouse").uncheck().run()
    assert "Destinations: choose at least one destination" in texts(at)
    assert button(at, "Next").disabled


def test_an_empty_script_cannot_go_on(app):
    at = at_stage_2(app)
    type_script(at, "   \n")
    assert "Script: is empty" in texts(at)
    assert button(at, "Next").disabled


def test_a_primary_key_the_new_preview_no_longer_has_is_flagged(app):
    at = run_test(at_stage_2(app))
    labelled(at.text_input, "Feed Name").set_value("people").run()
    labelled(at.radio, "Load Type").set_value("upsert").run()
    labelled(at.multiselect, "Primary key fields").set_value(["id"]).run()
    at = run_test(at, "from lib import outputStream\noutputStream.write({'key': 1})\n")
    assert "Primary key: 'id' is not a field of the preview's records" in texts(at)
    assert button(at, "Next").disabled
