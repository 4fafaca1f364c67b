"""Settings: the warehouse in use and its credentials, the runner's health, outgoing mail, and
the store and data settings."""

import streamlit as st

from app_pages.parts.settings_environment import notifications_tab, runner_tab, store_tab
from app_pages.parts.settings_warehouse import warehouse_tab

st.title("Settings", anchor=False)
warehouse, runner, notifications, store = st.tabs(["Warehouse", "Runner", "Notifications", "Store and data"])
with warehouse:
    warehouse_tab()
with runner:
    runner_tab()
with notifications:
    notifications_tab()
with store:
    store_tab()
