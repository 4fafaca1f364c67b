"""The feed editor: Peak's four stages over one FeedDraft, autosaved on every change.

The draft (app_pages.view_models.feed_editor) is the single source of truth. Widgets start from it, the values
they return go back into it, and when anything changed it is written to disk at once, so that
a page switch, a browser reload or a lost session finds the work where it was left.
"""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from app_pages.parts import stage_connection, stage_destination, stage_import, stage_trigger
from app_pages.parts.common import flash, forget_keys, saved_time, sentence_start, show_problems
from app_pages.view_models import feed_editor
from common.errors import Conflict, TributaryError, ValidationError
from app_pages.view_models.feed_editor import STAGES, FeedDraft
from app_pages.view_models.test_sessions import current_test, forget_test

_RENDERERS = (stage_connection.render, stage_import.render, stage_destination.render, stage_trigger.render)


def render(draft: FeedDraft) -> None:
    before = asdict(draft)
    if feed_editor.record_finished_test(draft, current_test(draft.id)):
        feed_editor.autosave(draft)
        before = asdict(draft)
    draft.stage = min(draft.stage, feed_editor.reachable_stage(draft))
    stepper = st.container()
    st.divider()
    _RENDERERS[draft.stage](draft)
    st.divider()
    _navigation(draft)
    with stepper:  # drawn last, so that it reflects what the user just changed
        _stepper(draft, feed_editor.reachable_stage(draft))
    if asdict(draft) != before:
        feed_editor.autosave(draft)
    if draft.saved_at:
        st.caption(f":material/cloud_done: Draft saved at {saved_time(draft.saved_at)}")


def _stepper(draft: FeedDraft, reachable: int) -> None:
    for index, (column, title) in enumerate(zip(st.columns(len(STAGES)), STAGES)):
        # Every stage before the reachable one is complete; the current one is highlighted instead.
        icon = ":material/check_circle:" if index < reachable and index != draft.stage else None
        if column.button(f"{index + 1}. {title}", key=f"{draft.id}:step:{index}", width="stretch", icon=icon,
                         type="primary" if index == draft.stage else "secondary", disabled=index > reachable):
            draft.stage = index
            feed_editor.autosave(draft)
            st.rerun()


def _navigation(draft: FeedDraft) -> None:
    problems = feed_editor.stage_problems(draft, draft.stage)
    back, hint, forward = st.columns([1, 4, 1], vertical_alignment="center")
    if draft.stage > 0 and back.button("Back", icon=":material/arrow_back:", key=f"{draft.id}:back", width="stretch"):
        draft.stage -= 1
        feed_editor.autosave(draft)
        st.rerun()
    if problems:
        hint.caption("To continue: " + " · ".join(f"{sentence_start(field)}: {message}" for field, message in problems))
    if draft.stage < len(STAGES) - 1:
        if forward.button("Next", type="primary", icon=":material/arrow_forward:", icon_position="right",
                          key=f"{draft.id}:next", disabled=bool(problems), width="stretch"):
            draft.stage += 1
            feed_editor.autosave(draft)
            st.rerun()
    elif forward.button("Save", type="primary", icon=":material/save:", key=f"{draft.id}:save",
                        disabled=bool(problems), width="stretch"):
        _save(draft)


def _save(draft: FeedDraft) -> None:
    try:
        feed = feed_editor.save_feed(draft)
    except ValidationError as exc:
        show_problems(exc.problems)
        return
    except (Conflict, TributaryError) as exc:
        st.error(str(exc), icon=":material/error:")
        return
    forget_test(draft.id)
    forget_keys(f"{draft.id}:")
    for key in ("editor:new-draft", "editor:edit-draft"):
        st.session_state.pop(key, None)
    flash(f"Feed {feed.name} saved." + (" Click Run now to run it." if draft.mode == "new" else ""))
    st.switch_page("app_pages/feeds.py")
