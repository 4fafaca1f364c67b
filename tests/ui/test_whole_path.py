"""The whole path a user takes, in the app: a new connection, a script, a test with its
preview, a destination, the trigger, SAVE, Run now, and the rows on the Data page."""

import json

from core.runs import list_runs
from tests.ui.conftest import (
    button,
    current_draft,
    labelled,
    landed_on,
    texts,
    type_script,
    wait_for_runs,
    wait_for_test,
)


def script_for(api_url: str) -> str:
    return (
        "from lib import connection, outputStream, metadata\n"
        f"response = connection.get('{api_url}/basic/entries')\n"
        "response.raise_for_status()\n"
        "entries = response.json()['entries']\n"
        "print(f'fetched {len(entries)} entries')\n"
        "for entry in entries:\n"
        "    outputStream.write(entry)\n"
        "metadata.save({'fetched': len(entries)})\n"
    )


def test_new_connection_script_test_destination_trigger_save_run_and_data(app, demo_api):
    at = app("new")
    assert labelled(at.selectbox, "Select Connection").value == ""

    # Stage 1: NEW CONNECTION asks for the name and auth type first...
    button(at, "New connection").click().run()
    labelled(at.text_input, "Connection name").set_value("DemoApi")
    labelled(at.radio, "Authentication type").set_value("basic")
    button(at, "Save").click().run()
    # ...then the connection is selected, and its parameters are asked for.
    assert labelled(at.selectbox, "Select Connection").value == "DemoApi"
    assert "parameters not saved yet" in texts(at)
    assert button(at, "Next").disabled
    labelled(at.text_input, "Username").set_value(demo_api.username)
    labelled(at.text_input, "Password").set_value(demo_api.password)
    button(at, "Save parameters").click().run()
    assert not at.exception
    assert labelled(at.selectbox, "Select Connection").value == "DemoApi"
    button(at, "Next").click().run()

    # Stage 2: the script, TEST, the preview, the load type and the feed name.
    assert any(s.value == "Import Configuration" for s in at.subheader)
    assert button(at, "Next").disabled  # not tested, no name
    type_script(at, script_for(demo_api.url))
    labelled(at.toggle, "Run to completion").set_value(True).run()
    button(at, "Test").click().run()
    wait_for_test(at, current_draft(at).id)
    page = texts(at)
    assert "Test succeeded: 100 records" in page
    assert "fetched 100 entries" in page
    assert {"fetched": 100} in [json.loads(j.value) for j in at.json]  # the metadata it saved
    assert [t.label for t in at.tabs] == ["JSON", "TABULAR"]
    labelled(at.text_input, "Feed Name").set_value("demo_entries").run()
    assert not button(at, "Next").disabled
    button(at, "Next").click().run()

    # Stage 3: the embedded warehouse offers DuckDB and Parquet; each says what it creates.
    boxes = {c.label: c for c in at.checkbox}
    assert set(boxes) == {"DuckDB warehouse", "Local Parquet files"}
    assert boxes["DuckDB warehouse"].value is True
    assert "table demo_entries in the DuckDB file" in texts(at)
    boxes["Local Parquet files"].check().run()
    button(at, "Next").click().run()

    # Stage 4: manual trigger, tags, SAVE, back on the Feeds page.
    assert labelled(at.radio, "Run this feed").value is not None
    labelled(at.multiselect, "Tags").set_value(["demo"]).run()
    button(at, "Save").click().run()
    assert "Feed demo_entries saved." in texts(at)
    landed_on(at, "feeds", "Feeds")

    # Run now, then the rows are on the Data page.
    button(at, "Run now").click().run()
    run = wait_for_runs("demo_entries")
    assert run.status == "succeeded", run.error
    assert run.records_loaded == 100
    at.switch_page("app_pages/data.py").run()
    tables = at.dataframe[0].value
    assert list(tables["table"]) == ["demo_entries"]
    assert int(tables["rows"][0]) == 100
    assert len(list_runs("demo_entries")) == 1
