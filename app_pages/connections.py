"""Connections: the saved connections (secrets masked), NEW CONNECTION, edit and delete."""

import streamlit as st

from app_pages.parts.common import count_of, flash, show_flash
from app_pages.parts.connection_forms import (
    connection_details,
    open_new_connection,
    parameters_form,
    show_open_dialogs,
    take_created,
    test_connection,
)
from core.connection_check import feeds_by_connection
from core.connections import list_connections
from core.validation import AUTH_TYPES

PENDING = "connections:pending"  # a connection named in the dialog, parameters not saved yet

title, new = st.columns([4, 1.4], vertical_alignment="bottom")
title.title("Connections", anchor=False)
if new.button("New connection", icon=":material/add:", key="connections:new", width="stretch"):
    open_new_connection("connections-page")
    st.rerun()
show_flash()

created = take_created("connections-page")
if created:
    if created["saved"]:
        st.success(f"Connection {created['name']} saved.")
    else:
        st.session_state[PENDING] = created

pending = st.session_state.get(PENDING)
if pending:
    with st.container(border=True):
        head, cancel = st.columns([5, 1], vertical_alignment="center")
        auth_label = AUTH_TYPES[pending["auth_type"]]
        head.markdown(f"**{pending['name']}** · {auth_label} · :orange[parameters not saved yet]: enter them and save.")
        if cancel.button("Cancel", key="connections:pending-cancel"):
            st.session_state.pop(PENDING)
            st.rerun()
        if parameters_form(pending["name"], pending["auth_type"], "connections:pending", existing=False):
            st.session_state.pop(PENDING)
            flash(f"Connection {pending['name']} saved.")
            st.rerun()

connections = list_connections()
if not connections and not pending:
    st.info("No connections yet. A connection keeps an API's credentials out of your scripts.")
used = feeds_by_connection()
for conn in connections:
    with st.container(border=True):
        st.markdown(f":material/key: **{conn.name}** · {AUTH_TYPES.get(conn.auth_type, conn.auth_type)}")
        users = used.get(conn.name, [])
        st.caption(f":material/conversion_path: Used by {count_of(len(users), 'feed')}: {', '.join(users)}"
                   if users else ":material/conversion_path: Not used by any feed")
        connection_details(conn.name, f"connections:{conn.name}")
        test_connection(conn.name, conn.auth_type, f"connections:{conn.name}")
show_open_dialogs()
