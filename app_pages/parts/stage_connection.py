"""Stage 1, Connection: choose a saved connection, or name a new one in the NEW CONNECTION
dialog and then enter its parameters here."""

from __future__ import annotations

import streamlit as st

from app_pages.parts.connection_forms import (
    connection_details,
    open_new_connection,
    parameters_form,
    show_open_dialogs,
    take_created,
)
from core.connections import list_connections
from app_pages.parts.common import flash
from app_pages.view_models import feed_editor
from app_pages.view_models.feed_editor import FeedDraft
from core.validation import AUTH_TYPES

NO_CONNECTION = ""


def render(draft: FeedDraft) -> None:
    st.subheader("Connection", anchor=False)
    key = f"{draft.id}:connection"
    created = take_created(draft.id)
    if created:
        _adopt(draft, created)
        st.session_state[key] = created["name"]  # the new connection appears selected
    names = [c.name for c in list_connections()]
    pending = (draft.pending_connection or {}).get("name")
    if pending and pending in names:
        # Its parameters were saved (in this session before a reload, or in another tab).
        draft.connection, draft.pending_connection, pending = pending, None, None
    options = [NO_CONNECTION, *names] + ([pending] if pending and pending not in names else [])
    if st.session_state.get(key, pending or draft.connection or NO_CONNECTION) not in options:
        st.session_state.pop(key, None)  # the connection was deleted meanwhile
    if key not in st.session_state:
        st.session_state[key] = pending or draft.connection or NO_CONNECTION

    select, new = st.columns([4, 1], vertical_alignment="bottom")
    choice = select.selectbox("Select Connection", options, key=key, format_func=_label)
    if new.button("New connection", icon=":material/add:", key=f"{draft.id}:new-connection", width="stretch"):
        open_new_connection(draft.id)
        st.rerun()

    if pending and choice == pending:
        _pending_form(draft, key)
    else:
        draft.pending_connection = None
        draft.connection = choice or None
        if choice:
            # Deleting is for the Connections page, not a step of making a feed.
            connection_details(choice, f"{draft.id}:conn:{choice}", deletable=False)
            st.page_link("app_pages/connections.py", label="Manage connections", icon=":material/key:")
        else:
            st.caption("No connection: the script calls the API itself (a public API, or credentials in the script).")
    show_open_dialogs()


def _label(name: str) -> str:
    return "No connection" if name == NO_CONNECTION else name


def _adopt(draft: FeedDraft, created: dict) -> None:
    if created["saved"]:
        draft.connection, draft.pending_connection = created["name"], None
    else:
        draft.connection = None
        draft.pending_connection = {"name": created["name"], "auth_type": created["auth_type"]}


def _pending_form(draft: FeedDraft, key: str) -> None:
    name, auth_type = draft.pending_connection["name"], draft.pending_connection["auth_type"]
    st.markdown(f"**{name}** · {AUTH_TYPES[auth_type]} · :orange[parameters not saved yet]: enter them and save.")
    if parameters_form(name, auth_type, f"{draft.id}:pending", existing=False):
        draft.connection, draft.pending_connection = name, None
        feed_editor.autosave(draft)  # st.rerun() ends this run before the editor's own autosave
        flash(f"Connection {name} saved.")
        st.rerun()
