"""Tributary's user interface: the access gate, then the pages. Started by app.py's st.App;
AppTest drives this script directly."""

import streamlit as st

from pages.parts.access_gate import require_access, sidebar_status

st.set_page_config(page_title="Tributary", page_icon=":material/water:", layout="wide")

mode = require_access()

pages = [
    st.Page("pages/feeds.py", title="Feeds", icon=":material/view_list:", url_path="feeds", default=True),
    st.Page("pages/new_feed.py", title="New feed", icon=":material/add_circle:", url_path="new-feed"),
    st.Page("pages/edit_feed.py", title="Edit feed", icon=":material/edit:", url_path="edit-feed"),
    st.Page("pages/connections.py", title="Connections", icon=":material/key:", url_path="connections"),
    st.Page("pages/runs.py", title="Runs", icon=":material/history:", url_path="runs"),
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:", url_path="data"),
]
page = st.navigation(pages)
sidebar_status(mode)
page.run()
