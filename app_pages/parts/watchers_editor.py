"""Stage 4's watchers: who hears about this feed's runs (an email address or a webhook URL)
and on which events. The list lives in the draft; SAVE adds and removes them in the store,
since a watcher needs its feed to exist. The rules are core.watchers'."""

from __future__ import annotations

import streamlit as st

from app_pages.parts.common import count_of, forget_keys
from app_pages.parts.trigger_when import plain
from app_pages.view_models import feed_editor
from app_pages.view_models.settings_view import email_ready
from app_pages.view_models.trigger_form import describe_watcher, new_watcher, target_label, watcher_field_problems
from core.watchers import CHANNELS, EVENTS

_CHANNEL_NAMES = {"email": "Email", "webhook": "Webhook"}
EMAIL_SETUP = ("set TRIBUTARY_SMTP_HOST (and TRIBUTARY_SMTP_PORT) for Tributary and restart it; "
               "Settings → Notifications shows what is set.")
_PLACEHOLDERS = {"email": "ops@example.com", "webhook": "https://example.com/hooks/tributary"}


def render(draft) -> None:
    st.markdown(f"**Watchers** ({count_of(len(draft.watchers), 'watcher')})")
    st.caption("Tell people or systems about this feed's runs: an email, or an HTTP POST of a JSON document "
               "describing the run. Changes to watchers take effect when you Save.")
    for index, watcher in enumerate(list(draft.watchers)):
        with st.container(border=True):
            text, remove = st.columns([6, 1], vertical_alignment="center")
            pending = "" if watcher.get("id") else " :orange[(added when you Save)]"
            text.markdown(f":material/notifications: {plain(describe_watcher(watcher))}{pending}")
            if remove.button("Remove", key=f"{draft.id}:watcher-remove:{index}", icon=":material/delete:",
                             width="stretch"):
                draft.watchers = [w for i, w in enumerate(draft.watchers) if i != index]
                _rerun(draft)
    if not email_ready() and any(w.get("channel") == "email" for w in draft.watchers):
        st.warning(f"**Email is not set up**, so email watchers will not be sent: {EMAIL_SETUP}",
                   icon=":material/mail_off:")
    _new_watcher(draft)


def _rerun(draft) -> None:
    feed_editor.autosave(draft)  # the rerun skips the editor's own autosave of this run
    st.rerun()


def _new_watcher(draft) -> None:
    prefix = f"{draft.id}:watcher-new:"
    tried_key = f"{draft.id}:watcher-tried"
    with st.container(border=True):
        st.markdown("**Add a watcher**")
        events = st.multiselect("Events", list(EVENTS), format_func=EVENTS.get, key=prefix + "events",
                                placeholder="Choose one or more events")
        events_box = st.empty()
        minutes, minutes_box = None, events_box
        if "long_run" in events:
            minutes = st.number_input("Longer than (minutes)", min_value=1, step=1, value=None, placeholder="e.g. 30",
                                      key=prefix + "minutes")
            minutes_box = st.empty()
        channel = st.radio("Channel", list(CHANNELS), format_func=_CHANNEL_NAMES.get, horizontal=True,
                           key=prefix + "channel")
        if channel == "email" and not email_ready():
            st.caption(f":orange[:material/mail_off: Email is not set up yet: {EMAIL_SETUP}]")
        target = st.text_input(target_label(channel), key=prefix + "target", placeholder=_PLACEHOLDERS.get(channel))
        target_box = st.empty()
        clicked = st.button("Add watcher", icon=":material/add:", key=f"{draft.id}:watcher-add")

    candidate = new_watcher(events, channel, target, int(minutes) if minutes is not None else None)
    problems = watcher_field_problems(candidate)
    if clicked and not problems:
        draft.watchers = [*draft.watchers, candidate]
        forget_keys(prefix)
        st.session_state.pop(tried_key, None)
        _rerun(draft)
    if clicked:
        st.session_state[tried_key] = True
    if st.session_state.get(tried_key):
        # Once Add was tried, every field says what is wrong with it, and stops when fixed.
        labels = {"events": "Events", "long run minutes": "Minutes", "channel": "Channel",
                  "target": target_label(channel)}
        boxes = {"events": events_box, "long run minutes": minutes_box, "channel": target_box, "target": target_box}
        shown: dict = {}
        for field, messages in problems.items():
            shown.setdefault(boxes.get(field, target_box), []).extend(
                f":red[:material/close: {labels.get(field, field)}: {plain(m)}]" for m in messages)
        for box, lines in shown.items():
            box.markdown("  \n".join(lines))
