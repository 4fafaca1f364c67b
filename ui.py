"""Tributary's user interface: the access gate, then the pages. Started by app.py's st.App;
AppTest drives this script directly.

The pages live in app_pages/, not pages/: Streamlit treats a pages/ folder beside the main
script as a legacy multipage app and would run each page on its own, skipping this gate.
"""

import streamlit as st

from app_pages.parts.access_gate import require_access, sidebar_status

# An emoji, not a Material icon: those load from Google's servers, and Tributary works offline.
st.set_page_config(page_title="Tributary", page_icon="🌊", layout="wide")

mode = require_access()

pages = [
    st.Page("app_pages/feeds.py", title="Feeds", icon=":material/view_list:", default=True),
    st.Page("app_pages/new_feed.py", title="New feed", icon=":material/add_circle:", url_path="new-feed"),
    st.Page("app_pages/edit_feed.py", title="Edit feed", icon=":material/edit:", url_path="edit-feed"),
    st.Page("app_pages/connections.py", title="Connections", icon=":material/key:", url_path="connections"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/history:", url_path="runs"),
    st.Page("app_pages/data.py", title="Data", icon=":material/table_chart:", url_path="data"),
    st.Page("app_pages/settings.py", title="Settings", icon=":material/settings:", url_path="settings"),
]
page = st.navigation(pages)
sidebar_status(mode)
page.run()
