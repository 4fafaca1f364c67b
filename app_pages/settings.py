"""Settings: the warehouse in use and its credentials, the runner's health, outgoing mail, and
the store and data settings, and the workers seen (celery executor)."""

import streamlit as st

from app_pages.parts.settings_environment import notifications_tab, runner_tab, store_tab
from app_pages.parts.settings_warehouse import warehouse_tab
from app_pages.parts.settings_workers import workers_tab

st.title("Settings", anchor=False)
warehouse, runner, workers, notifications, store = st.tabs(
    ["Warehouse", "Runner", "Workers", "Notifications", "Store and data"])
with warehouse:
    warehouse_tab()
with runner:
    runner_tab()
with workers:
    workers_tab()
with notifications:
    notifications_tab()
with store:
    store_tab()
