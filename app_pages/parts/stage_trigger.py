"""Stage 4, Trigger: how the feed starts, its tags, and a last look before SAVE."""

from __future__ import annotations

import json

import streamlit as st

from app_pages.parts.common import bind
from app_pages.parts.tab_adds_tags import tab_adds_tags
from core.feed_editor import FeedDraft, describe_trigger, destination_choices, trigger_choices
from core.validation import LOAD_TYPES


def render(draft: FeedDraft) -> None:
    st.subheader("Trigger", anchor=False)
    choices = {json.dumps(t, sort_keys=True): t for t in trigger_choices(draft)}
    current = json.dumps(draft.trigger or {"type": "manual"}, sort_keys=True)
    key = bind(f"{draft.id}:trigger", current if current in choices else next(iter(choices)))
    chosen = st.radio("Run this feed", list(choices), format_func=lambda k: describe_trigger(choices[k]), key=key)
    draft.trigger = dict(choices[chosen])
    tags_key = bind(f"{draft.id}:tags", list(draft.tags))
    tags = st.multiselect("Tags", sorted(set(draft.tags) | set(st.session_state[tags_key])), key=tags_key,
                          accept_new_options=True, placeholder="Type a tag and press Enter or Tab")
    tab_adds_tags("Tags", key=f"{draft.id}:tags-tab")
    draft.tags = [t.strip() for t in tags if t.strip()]
    _summary(draft)


def _summary(draft: FeedDraft) -> None:
    titles = {c.name: c.title for c in destination_choices(draft)}
    key = f" (primary key: {', '.join(draft.primary_key)})" if draft.load_type == "upsert" else ""
    st.markdown("**The feed**")
    st.markdown(
        f"- Name: `{draft.feed_name}`\n"
        f"- Connection: {draft.connection or 'none'}\n"
        f"- Dependencies: {', '.join(draft.dependencies) or 'none'}\n"
        f"- Load type: {LOAD_TYPES.get(draft.load_type, draft.load_type)}{key}\n"
        f"- Destinations: {', '.join(titles.get(d, d) for d in draft.destinations) or 'none'}"
    )
