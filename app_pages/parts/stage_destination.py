"""Stage 3, Destination: the destinations the configured warehouse offers, several at once,
each saying what it will create."""

from __future__ import annotations

import streamlit as st

from app_pages.parts.common import bind
from app_pages.view_models.feed_editor import FeedDraft, destination_choices
from common.settings import get_settings


def render(draft: FeedDraft) -> None:
    st.subheader("Destination", anchor=False)
    st.caption(f"Where each run's records are loaded (warehouse: {get_settings().warehouse}). Choose one or more.")
    chosen = []
    for choice in destination_choices(draft):
        key = bind(f"{draft.id}:dest:{choice.name}", choice.name in draft.destinations)
        with st.container(border=True):
            if st.checkbox(choice.title, key=key):
                chosen.append(choice.name)
            st.caption(f"Creates {choice.target}")
            if not choice.supported:
                st.caption(f":orange[:material/warning: {choice.title} {choice.reason}.]")
    draft.destinations = chosen
