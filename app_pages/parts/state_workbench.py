"""The state workbench of a feed (Edit feed, State tab): its current state and history, and the
changes a person may make by hand: edit (with a diff before saving), reset to {}, rewind to the
state after an earlier run. Each is kept in the history with who and why; core/state.py refuses
them while a run of the feed is in progress."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app_pages.parts.common import flash, owner, when
from common.errors import TributaryError
from core import state as states
from core.bootstrap import start_run
from core.runs import RunOptions


def render(feed_name: str) -> None:
    current = states.current_state(feed_name)
    history = states.state_history(feed_name)
    st.markdown("**Current state**: what the next run's `metadata` holds")
    st.json(current)
    _history(history)
    edit, reset, rewind, backfill, refresh = st.tabs(["Edit", "Reset", "Rewind", "Run with a state", "Full refresh"])
    with edit:
        _edit(feed_name, current)
    with reset:
        _reset(feed_name)
    with rewind:
        _rewind(feed_name, history)
    with backfill:
        _backfill(feed_name, current)
    with refresh:
        _full_refresh(feed_name)


def _history(history) -> None:
    if not history:
        st.caption("No state yet: the first run starts from {}.")
        return
    st.markdown("**History** (newest first)")
    rows = [{"When": when(h.created_at), "Set by": _set_by(h), "Why": h.note or "", "State": json.dumps(h.state)}
            for h in reversed(history)]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def _set_by(row) -> str:
    if row.reason in ("run", "checkpoint"):
        return f"{row.reason} {row.run_id}"
    return f"{row.reason} by {row.changed_by or 'someone'}"


def _edit(feed_name: str, current: dict) -> None:
    key = f"state:{feed_name}"
    text = st.text_area("New state (a JSON object)", value=json.dumps(current, indent=2), height=160,
                        key=f"{key}:text")
    try:
        proposed = json.loads(text)
    except ValueError as exc:
        st.error(f"New state: not valid JSON ({exc})", icon=":material/error:")
        return
    if not isinstance(proposed, dict):
        st.error(f"New state: must be a JSON object, not {type(proposed).__name__}", icon=":material/error:")
        return
    changes = states.diff_states(current, proposed)
    if not changes:
        st.caption("No change from the current state.")
        return
    st.markdown("**What changes**")
    st.dataframe(pd.DataFrame([{"Key": c["path"], "Change": c["change"], "Now": json.dumps(c["old"]),
                                "After": json.dumps(c["new"])} for c in changes]), hide_index=True)
    why = st.text_input("Why (kept in the history)", key=f"{key}:why")
    if st.button("Save state", key=f"{key}:save", icon=":material/save:"):
        _apply(lambda: states.set_state(feed_name, proposed, owner(), why), "State saved.")


def _reset(feed_name: str) -> None:
    st.caption("The next run starts from {}: it fetches everything again.")
    why = st.text_input("Why (kept in the history)", key=f"state:{feed_name}:reset-why")
    if st.button("Reset to {}", key=f"state:{feed_name}:reset", icon=":material/restart_alt:"):
        _apply(lambda: states.reset_state(feed_name, {}, owner(), why), "State reset to {}.")


def _rewind(feed_name: str, history) -> None:
    runs = [h for h in reversed(history) if h.run_id and h.reason == "run"]
    if not runs:
        st.caption("No run has committed a state yet.")
        return
    labels = {h.run_id: f"after run {h.run_id} ({when(h.created_at)}): {json.dumps(h.state)}" for h in runs}
    chosen = st.selectbox("Rewind to the state", list(labels), format_func=labels.get,
                          key=f"state:{feed_name}:rewind-to")
    why = st.text_input("Why (kept in the history)", key=f"state:{feed_name}:rewind-why")
    if st.button("Rewind", key=f"state:{feed_name}:rewind", icon=":material/history:"):
        _apply(lambda: states.rewind_state(feed_name, chosen, owner(), why or None), "State rewound.")


def _backfill(feed_name: str, current: dict) -> None:
    st.caption("Run the feed once from a state of your choosing (a backfill, or a replay from an older or edited "
               "state). The feed's state stays as it is unless you ask otherwise.")
    text = st.text_area("Start from (a JSON object)", value=json.dumps(current, indent=2), height=120,
                        key=f"state:{feed_name}:backfill-state")
    commit = st.checkbox("Make the state it ends with current when the run succeeds",
                         key=f"state:{feed_name}:backfill-commit")
    try:
        start = json.loads(text)
    except ValueError as exc:
        st.error(f"Start from: not valid JSON ({exc})", icon=":material/error:")
        return
    if st.button("Run with this state", key=f"state:{feed_name}:backfill", icon=":material/play_arrow:"):
        options = RunOptions(state=start, commit_state=commit)
        _apply(lambda: start_run(feed_name, trigger="manual", options=options), "Run started from the given state.")


def _full_refresh(feed_name: str) -> None:
    st.caption("Reload the feed from {} and replace its table when the run commits, whatever its load type: "
               "readers see the old contents until then, and a failed run leaves them.")
    if st.button("Start a full refresh", key=f"state:{feed_name}:full-refresh", icon=":material/refresh:"):
        _apply(lambda: start_run(feed_name, trigger="manual", options=RunOptions(full_refresh=True)),
               "Full refresh started.")


def _apply(change, done: str) -> None:
    try:
        change()
    except TributaryError as exc:
        st.error(str(exc), icon=":material/block:")
        return
    flash(done)
    st.rerun()
