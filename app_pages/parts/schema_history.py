"""A feed's schema history (Edit feed's Schema tab) and one run's schema change (the run's
Destinations tab): columns added, widened, fields dropped, records rejected, by which run."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from app_pages.parts.common import when
from core.feeds import get_feed
from core.schema_history import change_lines, schema_history
from core.validation import SCHEMA_POLICIES


def render_run_change(changes: dict | None) -> None:
    """One run's change to its tables, per destination."""
    if not changes:
        st.caption("This run changed no table's columns and rejected no record.")
        return
    for destination, entry in changes.items():
        st.markdown(f"**{destination}**")
        st.markdown("\n".join(f"- {line}" for line in change_lines(entry)))


def render(feed_name: str) -> None:
    """The feed's schema policy and its runs' changes, newest first."""
    policy = get_feed(feed_name).schema_policy
    st.caption(f"Schema policy: **{SCHEMA_POLICIES.get(policy, policy)}** (change it in the Destination stage).")
    history = schema_history(feed_name)
    if not history:
        st.info("No run has changed this feed's tables yet.", icon=":material/schema:")
        return
    for item in history:
        with st.container(border=True):
            st.markdown(f"Run `{item['run_id']}` ({item['status']}, {when(datetime.fromisoformat(item['at']))}) into **{item['destination']}**")
            st.markdown("\n".join(f"- {line}" for line in item["lines"]))
