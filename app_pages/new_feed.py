"""New feed: the four stages over a draft that survives reloads (its id rides in the URL)."""

import streamlit as st

from app_pages.parts import editor
from app_pages.parts.common import forget_keys, owner, saved_time, show_flash
from app_pages.parts.stage_import import EDITOR_GENERATION
from app_pages.view_models import feed_editor
from common.errors import NotFound, ValidationError
from app_pages.view_models.test_sessions import forget_test

CURRENT = "editor:new-draft"
START_OVER = "new-feed:start-over-asked"  # the draft whose Start over waits for a confirmation


def current_draft() -> feed_editor.FeedDraft:
    """The draft named in the URL, else the one this session works on, else the user's latest
    unsaved new feed, else a fresh one."""
    requested = st.query_params.get("draft")
    draft = st.session_state.get(CURRENT)
    if requested and (draft is None or draft.id != requested):
        try:
            draft = feed_editor.open_draft(requested, owner())
        except (NotFound, ValidationError):
            draft = None
    if draft is None:
        draft = feed_editor.latest_new_draft(owner()) or feed_editor.new_draft(owner())
    st.session_state[CURRENT] = draft
    st.query_params["draft"] = draft.id
    return draft


def start_over(draft: feed_editor.FeedDraft) -> None:
    feed_editor.discard(draft)
    forget_test(draft.id)
    forget_keys(f"{draft.id}:")
    st.session_state[EDITOR_GENERATION] = st.session_state.get(EDITOR_GENERATION, 0) + 1
    st.session_state[CURRENT] = feed_editor.new_draft(owner())
    st.query_params["draft"] = st.session_state[CURRENT].id


def _close_start_over() -> None:
    st.session_state.pop(START_OVER, None)


@st.dialog("Start over", on_dismiss=_close_start_over)
def start_over_dialog(draft: feed_editor.FeedDraft) -> None:
    st.write(f"Discard the draft **{draft.title}** (its connection choice, script, test and settings) and "
             "begin a new feed? This cannot be undone.")
    yes, cancel = st.columns(2)
    if yes.button("Yes, start over", type="primary", key="new-feed:start-over-confirm", width="stretch"):
        _close_start_over()
        start_over(draft)
        st.rerun()
    if cancel.button("Cancel", key="new-feed:start-over-cancel", width="stretch"):
        _close_start_over()
        st.rerun()


draft = current_draft()
title, actions = st.columns([4, 2], vertical_alignment="bottom")
title.title("New feed", anchor=False)
with actions:
    others = feed_editor.other_new_drafts(owner(), draft.id)
    if others:
        with st.popover(f"Other drafts ({len(others)})", icon=":material/draft:"):
            for other in others:
                if st.button(f"{other.title} · saved {saved_time(other.saved_at or '')}", key=f"open-draft:{other.id}"):
                    st.session_state[CURRENT] = other
                    st.query_params["draft"] = other.id
                    st.rerun()
    if st.button("Start over", icon=":material/restart_alt:", key="new-feed:start-over",
                 help="Discard this draft and begin a new feed from Peak's template"):
        st.session_state[START_OVER] = draft.id
        st.rerun()
show_flash()
if st.session_state.get(START_OVER) == draft.id:
    start_over_dialog(draft)
editor.render(draft)
