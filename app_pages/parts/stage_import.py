"""Stage 2, Import Configuration: dependencies, the script in the Ace editor, TEST with live
logs and the preview, the load type and the feed name (its rules checked as the user types)."""

from __future__ import annotations

import streamlit as st
from streamlit_ace import st_ace

from app_pages.parts.common import bind, show_problems
from app_pages.parts.tab_adds_tags import tab_adds_tags
from app_pages.parts.test_panel import render_live_logs, render_result
from app_pages.view_models import feed_editor, script_templates
from app_pages.view_models.feed_editor import FeedDraft
from app_pages.view_models.test_sessions import current_test, start_script_test
from common.errors import NotFound
from core.connections import get_connection
from core.validation import LOAD_TYPES, dependency_problems

EDITOR_GENERATION = "editor:ace-generation"  # bumped to show a replaced script in a fresh editor


def render(draft: FeedDraft) -> None:
    st.subheader("Import Configuration", anchor=False)
    _dependencies(draft)
    _script(draft)
    _test(draft)
    st.divider()
    _load_type(draft)
    _feed_name(draft)


def _dependencies(draft: FeedDraft) -> None:
    key = bind(f"{draft.id}:deps", list(draft.dependencies))
    deps = st.multiselect(
        "Install Dependency", sorted(set(draft.dependencies) | set(st.session_state[key])), key=key,
        accept_new_options=True, placeholder="Type a package, e.g. pandas>=2.2, and press Enter or Tab",
        help="Requirement specifiers as pip understands them; installed once per set of dependencies.",
    )
    tab_adds_tags("Install Dependency", key=f"{draft.id}:deps-tab")
    draft.dependencies = [d.strip() for d in deps if d.strip()]
    for _, message in dependency_problems(draft.dependencies):
        st.caption(f":red[:material/close: Dependency {message}]")


def _editor_key(draft: FeedDraft) -> str:
    return f"{draft.id}:script:{st.session_state.get(EDITOR_GENERATION, 0)}"


def _replace_script(draft: FeedDraft, script: str) -> None:
    """Show another script in a fresh editor (the Ace component keeps its own text otherwise)."""
    draft.script = script
    st.session_state[EDITOR_GENERATION] = st.session_state.get(EDITOR_GENERATION, 0) + 1


def _connection_auth_type(name: str | None) -> str | None:
    try:
        return get_connection(name).auth_type if name else None
    except NotFound:
        return None


def _fit_template(draft: FeedDraft) -> None:
    """A new feed's untouched template follows its connection: `lib.connection` when it has one."""
    auth_type = _connection_auth_type(draft.connection)
    wanted = script_templates.starting_template(auth_type)
    if (draft.mode == "new" and draft.script != wanted and draft.script.strip()
            and script_templates.is_starting_point(draft.script)):
        _replace_script(draft, wanted)
    if script_templates.uses_connection(auth_type) and "from lib import connection" in draft.script:
        st.caption(script_templates.template_caption(draft.connection, auth_type))


def _examples(draft: FeedDraft) -> None:
    found = {e.name: e for e in script_templates.examples()}
    if not found:
        return
    confirm_key = f"{draft.id}:example-confirm"
    pick, insert = st.columns([4, 1], vertical_alignment="bottom")
    name = pick.selectbox("Example scripts", list(found), index=None, key=f"{draft.id}:example",
                          placeholder="Start from an example…", format_func=lambda n: f"{n} · {found[n].description}")
    if insert.button("Insert", icon=":material/input:", key=f"{draft.id}:example-insert", disabled=name is None,
                     width="stretch"):
        if script_templates.is_starting_point(draft.script):
            _replace_script(draft, found[name].script)
        else:
            st.session_state[confirm_key] = name
    asked = st.session_state.get(confirm_key)
    if asked not in found:
        return
    with st.container(border=True):
        st.warning(f"Replace the script in the editor with **{asked}**? What is in the editor now is lost.",
                   icon=":material/warning:")
        yes, no = st.columns(2)
        if yes.button("Yes, replace the script", type="primary", key=f"{draft.id}:example-yes", width="stretch"):
            _replace_script(draft, found[asked].script)
            st.session_state.pop(confirm_key)
            feed_editor.autosave(draft)  # the rerun skips the editor's own autosave of this run
            st.rerun()
        if no.button("Cancel", key=f"{draft.id}:example-no", width="stretch"):
            st.session_state.pop(confirm_key)
            st.rerun()


def _script(draft: FeedDraft) -> None:
    st.markdown("**Script Editor**")
    _fit_template(draft)
    _examples(draft)
    key, seed_key = _editor_key(draft), f"{draft.id}:script-seed"
    if key not in st.session_state or seed_key not in st.session_state:
        # A new editor (first visit, back from another page, a reload) opens on the draft.
        st.session_state[seed_key] = draft.script
    script = st_ace(
        value=st.session_state[seed_key], language="python", theme="tomorrow", keybinding="vscode",
        min_lines=16, max_lines=40, font_size=14, tab_size=4, auto_update=True, key=key,
        annotations=_error_annotation(draft),
    )
    if script is not None:
        draft.script = script


def _error_annotation(draft: FeedDraft) -> list[dict]:
    test = draft.last_test or {}
    if test.get("ok") or not test.get("error_line") or test.get("fingerprint") != feed_editor.fingerprint(draft):
        return []
    return [{"row": test["error_line"] - 1, "column": 0, "type": "error", "text": test.get("error") or "error"}]


def _test(draft: FeedDraft) -> None:
    session = current_test(draft.id)
    running = bool(session and session.running)
    button, switch, state = st.columns([1, 2, 3], vertical_alignment="center")
    clicked = button.button("Test", type="primary", icon=":material/play_arrow:", key=f"{draft.id}:test",
                            disabled=running, width="stretch")
    complete_key = bind(f"{draft.id}:complete", draft.run_to_completion)
    draft.run_to_completion = switch.toggle(
        "Run to completion", key=complete_key,
        help="On: the whole script runs, for the total count and the metadata it saves. Off: it stops once "
             "the preview has its 10 records (quicker on a large API).",
    )
    if feed_editor.tested_version_is_current(draft):
        state.caption(":green[:material/check_circle: This version of the script passed its test.]")
    elif feed_editor.last_test_is_of_another_version(draft) and not running:
        state.caption(":orange[:material/info: The script, its dependencies or the connection changed: test again.]")
    if clicked:
        problems = dependency_problems(draft.dependencies)
        if problems:
            show_problems(problems)
        else:
            start_script_test(draft.id, feed_editor.request_for_test(draft), feed_editor.fingerprint(draft))
            st.rerun()
    if running:
        render_live_logs(draft.id)
    elif draft.last_test:
        render_result(draft.last_test, draft.script)


def _load_type(draft: FeedDraft) -> None:
    key = bind(f"{draft.id}:load-type", draft.load_type)
    draft.load_type = st.radio("Load Type", list(LOAD_TYPES), format_func=LOAD_TYPES.get, key=key, horizontal=True,
                               captions=["Append each run's records", "Replace the table's rows on each run",
                                         "Insert new records, update those with a known key"])
    if draft.load_type != "upsert":
        return
    columns = feed_editor.preview_columns(draft)
    key_widget = bind(f"{draft.id}:primary-key", list(draft.primary_key))
    # The preview's columns, plus any field chosen from an earlier preview (flagged if gone).
    choices = list(dict.fromkeys([*columns, *st.session_state[key_widget]]))
    draft.primary_key = st.multiselect("Primary key fields", choices, key=key_widget,
                                       placeholder="Choose the fields that identify a record")
    if not columns:
        st.caption("Test the script to choose the key from the preview's columns.")


def _feed_name(draft: FeedDraft) -> None:
    if draft.mode == "edit":
        st.text_input("Feed Name", value=draft.feed_name, disabled=True, key=f"{draft.id}:name-ro",
                      help="A feed cannot be renamed: its name is its table's name.")
        return
    key = bind(f"{draft.id}:name", draft.feed_name)
    draft.feed_name = (st.text_input("Feed Name", key=key, live=True, placeholder="e.g. public_apis") or "").strip()
    checks = feed_editor.feed_name_checks(draft)
    lines = []
    for check in checks:
        if check.ok is None:
            lines.append(f":gray[:material/radio_button_unchecked: {check.label}]")
        elif check.ok:
            lines.append(f":green[:material/check: {check.label}]")
        else:
            lines.append(f":red[:material/close: {feed_editor.broken_rule_text(check)}]")
    st.markdown("  \n".join(lines))
