"""Edit feed: the same four stages over a saved feed (unsaved changes are kept as a draft until
they are saved or discarded), the feed's state workbench and its schema history."""

import streamlit as st

from app_pages.parts import editor, schema_history, state_workbench
from app_pages.parts.common import forget_keys, owner, saved_time, show_flash
from app_pages.parts.stage_import import EDITOR_GENERATION
from app_pages.view_models import feed_editor
from common.errors import NotFound
from core.feeds import list_feeds
from app_pages.view_models.test_sessions import forget_test

CURRENT = "editor:edit-draft"

st.title("Edit feed", anchor=False)
show_flash()
names = [f.name for f in list_feeds()]
if not names:
    st.info("There is no feed to edit yet.")
    st.page_link("app_pages/new_feed.py", label="Create a feed", icon=":material/add_circle:")
    st.stop()

requested = st.query_params.get("feed")
if requested in names and st.session_state.get("edit:feed") != requested:
    st.session_state["edit:feed"] = requested
name = st.selectbox("Feed", names, key="edit:feed")
st.query_params["feed"] = name

draft = st.session_state.get(CURRENT)
if draft is None or draft.original_name != name:
    try:
        draft = feed_editor.draft_for_feed(name, owner())
    except NotFound as exc:
        st.error(str(exc))
        st.stop()
    if draft.saved_at and not feed_editor.has_unsaved_changes(draft):
        feed_editor.autosave(draft)  # a draft left with nothing in it is no unsaved change: dropped
    st.session_state[CURRENT] = draft

if draft.saved_at:
    note, discard = st.columns([4, 1], vertical_alignment="center")
    note.info(f"Unsaved changes to {name}, kept as a draft (saved at {saved_time(draft.saved_at)}).",
              icon=":material/draft:")
    if discard.button("Discard changes", icon=":material/undo:", key="edit:discard"):
        feed_editor.discard(draft)
        forget_test(draft.id)
        forget_keys(f"{draft.id}:")
        st.session_state[EDITOR_GENERATION] = st.session_state.get(EDITOR_GENERATION, 0) + 1
        st.session_state.pop(CURRENT, None)
        st.rerun()
definition, state, schema = st.tabs(["Definition", "State", "Schema"])
with definition:
    editor.render(draft)
with state:
    state_workbench.render(name)
with schema:
    schema_history.render(name)
