"""Stage 2's starting script fits the connection, and the example scripts are one click away
(asking before they replace a script the user wrote)."""

from core.connections import ConnectionInput, create_connection
from core.feeds import PEAK_TEMPLATE
from app_pages.view_models import script_templates
from tests.ui.conftest import ace_editors, button, current_draft, go_to_stage, labelled, texts, type_script

MINE = "from lib import outputStream\noutputStream.write({'mine': True})\n"


def at_stage_2(app, connection=None):
    at = app("new")
    if connection:
        labelled(at.selectbox, "Select Connection").set_value(connection).run()
    button(at, "Next").click().run()
    return at


def editor_text(at) -> str:
    return ace_editors(at)[0]["defaultValue"]


def test_a_basic_auth_connection_starts_from_a_template_using_it(app):
    create_connection("Shop", "basic", ConnectionInput(username="ann", password="pass-word"))
    at = at_stage_2(app, "Shop")
    assert "from lib import connection, outputStream, metadata" in editor_text(at)
    assert "The template uses `connection` from `lib`" in texts(at) and "**Shop** (Basic Auth" in texts(at)


def test_a_custom_auth_connection_too_and_no_connection_keeps_peaks_template(app):
    create_connection("Partner", "custom", ConnectionInput(auth_url="https://auth.example.com/token"))
    at = at_stage_2(app, "Partner")
    assert "from lib import connection, outputStream, metadata" in editor_text(at)
    assert "Custom Auth" in texts(at)
    go_to_stage(at, 1)
    labelled(at.selectbox, "Select Connection").set_value("").run()
    button(at, "Next").click().run()
    assert editor_text(at) == PEAK_TEMPLATE  # the untouched template follows the connection
    assert "The template uses `connection`" not in texts(at)


def test_a_script_the_user_wrote_is_kept_when_the_connection_changes(app):
    create_connection("Shop", "basic", ConnectionInput(username="ann", password="pass-word"))
    at = at_stage_2(app)
    type_script(at, MINE)
    go_to_stage(at, 1)
    labelled(at.selectbox, "Select Connection").set_value("Shop").run()
    button(at, "Next").click().run()
    assert editor_text(at) == MINE


def test_an_example_replaces_the_untouched_template_at_once(app):
    at = at_stage_2(app)
    labelled(at.selectbox, "Example scripts").set_value("incremental_get_data.py").run()
    button(at, "Insert").click().run()
    assert "metadata.save({\"next\": r.json()[\"next\"]})" in editor_text(at)


def test_an_example_asks_before_replacing_a_script_the_user_wrote(app):
    names = [e.name for e in script_templates.examples()]
    assert names == ["basic_auth_connection.py", "custom_auth_connection.py", "incremental_get_data.py",
                     "public_apis_entries.py"]
    at = at_stage_2(app)
    type_script(at, MINE)
    labelled(at.selectbox, "Example scripts").set_value("public_apis_entries.py").run()
    button(at, "Insert").click().run()
    assert "Replace the script in the editor with **public_apis_entries.py**?" in texts(at)
    [cancel] = [b for b in at.button if b.label == "Cancel"]
    cancel.click().run()
    assert current_draft(at).script == MINE
    button(at, "Insert").click().run()
    button(at, "Yes, replace the script").click().run()
    assert "Replace the script" not in texts(at)
    assert 'requests.get("http://127.0.0.1:8765/entries")' in editor_text(at)
