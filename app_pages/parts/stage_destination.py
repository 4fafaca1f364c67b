"""Stage 3, Destination: the destinations the configured warehouse offers, several at once,
each saying what it will create; and what a run does when its records change the table's
columns (the feed's schema policy)."""

from __future__ import annotations

import streamlit as st

from app_pages.parts.common import bind
from app_pages.view_models.feed_editor import FeedDraft, destination_choices, shown_queue
from common.settings import get_settings
from core.queues import DEFAULT_QUEUE, app_host_reason
from core.validation import SCHEMA_POLICIES

POLICY_CAPTIONS = {
    "evolve": "A new field adds a column; a wider value (an integer turning into a float) widens it.",
    "freeze": "A run that would add or widen a column fails before loading anything, naming the column.",
    "discard_new_columns": "The table keeps its columns: new fields are left out, and the run's log names them.",
}


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
    _schema_policy(draft)
    _queue(draft)


def _schema_policy(draft: FeedDraft) -> None:
    key = bind(f"{draft.id}:schema-policy", draft.schema_policy or "evolve")
    draft.schema_policy = st.selectbox("Schema changes", list(SCHEMA_POLICIES), format_func=SCHEMA_POLICIES.get,
                                       key=key, help="What a run does when its records do not fit the table")
    st.caption(POLICY_CAPTIONS[draft.schema_policy] + " Every change is kept in the feed's schema history.")


def _queue(draft: FeedDraft) -> None:
    """Which workers run the feed: meaningful with the celery executor only (shown otherwise
    only to clear a queue the feed has)."""
    current = shown_queue(draft)
    if get_settings().executor != "celery" and not current:
        return
    reason = app_host_reason(draft.destinations)
    key = bind(f"{draft.id}:queue", current)
    draft.queue = st.text_input("Queue", key=key, placeholder=DEFAULT_QUEUE,
                                help="Letters, digits, '-', '_' and '.', at most 64")
    if reason:
        st.caption(f":material/dns: {reason}.")
    else:
        st.caption("The workers that run this feed: those started with `--queues NAME` (or TRIBUTARY_WORKER_QUEUES) "
                   f"take its runs. Empty: the default queue ({DEFAULT_QUEUE}), which every worker consumes "
                   "unless told otherwise.")
