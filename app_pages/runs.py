"""Runs: history per feed and overall (status, start, duration, records, and for a queued
run why it waits), and one run's detail: its log (live while it runs), the state before and
after, its checkpoints, the error, and what its watchers were sent."""

import json

import pandas as pd
import streamlit as st

from app_pages.parts.common import count_of, duration, status_badge, when
from app_pages.parts.run_panel import render_run_log, run_seconds
from common.errors import NotFound
from app_pages.view_models.feed_overview import STATUS_CHOICES
from core.feeds import list_feeds
from app_pages.view_models.queue_reasons import queue_reasons
from core.runs import FINAL_STATUSES, get_run, list_runs
from core.watchers import delivery_views

ALL = ""
_WHAT = {"email": "the email", "webhook": "the webhook call"}


def deliveries(run) -> None:
    """What the feed's watchers were sent about this run, and why a sending failed."""
    views = delivery_views(run.id)
    st.markdown("**Watcher deliveries**")
    if not views:
        ended = run.status in FINAL_STATUSES
        st.caption("No watcher was notified about this run." if ended else "Watchers hear about a run when it ends.")
        return
    st.dataframe(pd.DataFrame([{
        "Event": v["title"], "Channel": v["channel"] or "(watcher removed)", "To": v["target"] or "—",
        "Status": v["status"], "Attempts": v["attempts"], "Error": v["error"] or "",
    } for v in views]), hide_index=True)
    for view in views:
        what = _WHAT.get(view["channel"], "the notification") + (f" to {view['target']}" if view["target"] else "")
        tries = count_of(view["attempts"], "attempt")
        if view["status"] == "failed":
            st.error(f"Could not deliver {what} ({view['title']}) after {tries}: {view['error']}",
                     icon=":material/notifications_off:")
        elif view["status"] == "pending":
            st.caption(f":material/hourglass_top: Still trying to deliver {what} ({tries} so far).")


st.title("Runs", anchor=False)
feed_col, status_col = st.columns(2)
feeds = [ALL, *[f.name for f in list_feeds()]]
requested_run = st.query_params.get("run")
feed = feed_col.selectbox("Feed", feeds, key="runs:feed", format_func=lambda n: n or "All feeds")
statuses = status_col.multiselect("Status", [s for s in STATUS_CHOICES if s not in ("never run", "paused")],
                                  key="runs:status", placeholder="Any status")
runs = [r for r in list_runs(feed or None, limit=200) if not statuses or r.status in statuses]

if not runs:
    st.info("No runs yet. Start one with Run now on the Feeds page.")
    st.stop()

waiting = queue_reasons(runs)
table = pd.DataFrame([{
    "Run": r.id, "Feed": r.feed_name, "Status": r.status, "Trigger": r.trigger,
    "Started": when(r.started_at or r.created_at), "Duration": duration(run_seconds(r)),
    "Records loaded": r.records_loaded, **({"Waiting for": waiting.get(r.id, "")} if waiting else {}),
} for r in runs])
st.dataframe(table, hide_index=True, height=min(400, 38 + 35 * len(runs)))

ids = [r.id for r in runs]
if requested_run and requested_run not in ids:
    try:
        ids.insert(0, get_run(requested_run).id)  # a run outside the filters, opened by link
    except NotFound:
        requested_run = None
if requested_run and st.session_state.get("runs:selected-from-link") != requested_run:
    st.session_state["runs:run"] = requested_run
    st.session_state["runs:selected-from-link"] = requested_run
by_id = {r.id: r for r in runs}
run_id = st.selectbox("Run", ids, key="runs:run",
                      format_func=lambda i: f"{i} · {by_id[i].feed_name} · {by_id[i].status}" if i in by_id else i)
st.query_params["run"] = run_id

run = get_run(run_id)
st.subheader(f"Run {run.id}", anchor=False)
badge, facts = st.columns([1, 5], vertical_alignment="center")
with badge:
    status_badge(run.status)
facts.caption(f"Feed **{run.feed_name}** · trigger {run.trigger} · attempt {run.attempt} · "
              f"started {when(run.started_at)}")
took, written, loaded = st.columns(3)
took.metric("Duration", duration(run_seconds(run)))
written.metric("Records written", run.records_written)
loaded.metric("Records loaded", run.records_loaded)
if run.status == "queued":
    st.info(waiting.get(run.id) or queue_reasons([run]).get(run.id), icon=":material/schedule:")
if run.error:
    where = f" (line {run.error_line} of the script)" if run.error_line and "line" not in run.error else ""
    st.error(run.error + where, icon=":material/error:")

st.markdown("**Log**")
render_run_log(run.id, key="runs:log", summary=False)

before, after = st.columns(2)
with before:
    st.markdown("**State before**")
    st.json(run.state_before or {})
with after:
    st.markdown("**State after**")
    st.json(run.state_after or {})
if run.checkpoints:
    st.markdown("**Checkpoints**")
    st.dataframe(pd.DataFrame([{"At": c["at"], "Records": c["records"], "State": json.dumps(c["state"])}
                               for c in run.checkpoints]), hide_index=True)
if run.destination_results:
    st.markdown("**Destinations**")
    st.dataframe(pd.DataFrame([{"Destination": name, **result} for name, result in run.destination_results.items()]),
                 hide_index=True)


deliveries(run)
