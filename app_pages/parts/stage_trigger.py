"""Stage 4, Trigger: what starts the feed (a schedule, once, or a webhook), who hears about
its runs (watchers), what happens when a run fails (retries), whether it may use the network,
its tags, and a last look before SAVE. The rules and the previews live in app_pages.view_models.trigger_form."""

from __future__ import annotations

import streamlit as st

from app_pages.parts import trigger_webhook, trigger_when, watchers_editor
from app_pages.parts.common import bind
from app_pages.parts.tab_adds_tags import tab_adds_tags
from app_pages.view_models import trigger_form
from app_pages.view_models import feed_editor
from app_pages.view_models.feed_editor import FeedDraft, destination_choices
from app_pages.view_models.settings_view import network_can_be_cut
from common.settings import get_settings
from app_pages.view_models.trigger_form import TYPES
from core.triggers import describe
from core.validation import LOAD_TYPES


def render(draft: FeedDraft) -> None:
    feed_editor.fill_trigger_stage(draft)
    st.subheader("Trigger", anchor=False)
    form = dict(draft.trigger_form)
    form["type"] = st.radio("Run this feed", list(TYPES), format_func=TYPES.get, horizontal=True,
                            key=bind(f"{draft.id}:trig:type", form["type"]))
    if form["type"] == "schedule":
        trigger_when.schedule(draft, form)
    elif form["type"] == "once":
        trigger_when.run_once(draft, form)
    else:
        trigger_webhook.render(draft)
    draft.trigger_form = form
    trigger, _ = trigger_form.trigger_from_form(form)
    if trigger is not None:
        draft.trigger = trigger
    st.divider()
    watchers_editor.render(draft)
    st.divider()
    _failures_and_network(draft)
    _tags(draft)
    _summary(draft)


def _failures_and_network(draft: FeedDraft) -> None:
    st.markdown("**When a run fails**")
    retries, backoff = st.columns(2)
    draft.retries = int(retries.number_input(
        "Retry attempts", min_value=0, max_value=trigger_form.RETRIES_MAX, step=1,
        key=bind(f"{draft.id}:retries", draft.retries),
        help="How many more times a failed run is tried. Each attempt is a run of its own on the Runs page."))
    draft.retry_backoff_s = int(backoff.number_input(
        "First retry after (seconds)", min_value=1, max_value=trigger_form.BACKOFF_MAX_S, step=1,
        key=bind(f"{draft.id}:retry-backoff", draft.retry_backoff_s),
        help="The wait before the first retry; each following wait is twice the one before."))
    st.caption(trigger_form.retry_plan(draft.retries, draft.retry_backoff_s))
    offline = st.checkbox("Run without network",
                          key=bind(f"{draft.id}:offline", not draft.network),
                          help="The script's sandbox gets no network at all: for scripts that must not reach "
                               "anything but what their connection material allows.")
    draft.network = not offline
    if offline and not network_can_be_cut():
        st.caption(f":orange[:material/warning: This server runs scripts with the {get_settings().runner} runner, "
                   "which cannot take the network away: the script keeps it (its log says so).]")


def _tags(draft: FeedDraft) -> None:
    tags_key = bind(f"{draft.id}:tags", list(draft.tags))
    tags = st.multiselect("Tags", sorted(set(draft.tags) | set(st.session_state[tags_key])), key=tags_key,
                          accept_new_options=True, placeholder="Type a tag and press Enter or Tab")
    tab_adds_tags("Tags", key=f"{draft.id}:tags-tab")
    draft.tags = [t.strip() for t in tags if t.strip()]


def _summary(draft: FeedDraft) -> None:
    titles = {c.name: c.title for c in destination_choices(draft)}
    key = f" (primary key: {', '.join(draft.primary_key)})" if draft.load_type == "upsert" else ""
    trigger, _ = feed_editor.form_trigger(draft)
    st.markdown("**The feed**")
    st.markdown(
        f"- Name: `{draft.feed_name}`\n"
        f"- Connection: {draft.connection or 'none'}\n"
        f"- Dependencies: {', '.join(draft.dependencies) or 'none'}\n"
        f"- Load type: {LOAD_TYPES.get(draft.load_type, draft.load_type)}{key}\n"
        f"- Destinations: {', '.join(titles.get(d, d) for d in draft.destinations) or 'none'}\n"
        f"- Trigger: {trigger_when.plain(describe(trigger)) if trigger else 'to be completed above'}\n"
        f"- Watchers: {len(draft.watchers)}"
    )
