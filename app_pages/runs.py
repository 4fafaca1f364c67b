"""Runs: history per feed and overall (status, start, duration, records, and for a queued
run why it waits), and one run's detail (a click on its row): its log (live while it runs),
the state before and after, the trigger and the webhook payload that started it, its attempts,
the result per destination, its checkpoints, the error, and what its watchers were sent.
The page redraws itself when a run changes (see parts/live_refresh.py)."""

import json
import zlib

import pandas as pd
import streamlit as st

from app_pages.parts.common import count_of, duration, status_badge, when
from app_pages.parts.live_refresh import keep_up_to_date
from app_pages.parts import schema_history
from app_pages.parts.run_panel import render_run_log, run_seconds
from core.run_details import attempts_of
from common.errors import NotFound
from common.process import worker_label
from app_pages.view_models.feed_overview import STATUS_CHOICES
from core.feeds import list_feeds
from app_pages.view_models.queue_reasons import queue_reasons
from core.runs import FINAL_STATUSES, get_run, list_runs
from core.watchers import delivery_views

ALL = ""
CHOSEN = "runs:chosen"  # the run shown: a row clicked, or the run a link opened
FROM_LINK = "runs:from-link"
SEEN = "runs:seen-selection"  # the table's key and the rows selected when last drawn
_WHAT = {"email": "the email", "webhook": "the webhook call"}


def deliveries(run) -> None:
    """What the feed's watchers were sent about this run, and why a sending failed."""
    views = delivery_views(run.id)
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


def runs_table(runs, waiting: dict, shown: str | None) -> str | None:
    """The runs, one a row; a click on a row returns that run's id (None without a new click).
    The run shown is kept by id, so it stays shown when new runs push the rows down."""
    ids = [r.id for r in runs]
    # What a user scans first comes first (at 1024 px the right end scrolls); the run id last.
    table = pd.DataFrame([{
        "Feed": r.feed_name, "Status": r.status, "Started": when(r.started_at or r.created_at),
        "Duration": duration(run_seconds(r)), "Records loaded": r.records_loaded, "Trigger": r.trigger,
        "Worker": worker_label(r.worker),  # the process that executed it (none yet: queued)
        **({"Waiting for": waiting.get(r.id, "")} if waiting else {}), "Run": r.id,
    } for r in runs])
    # A new key when the rows change (a filter, a new run): the table then shows the run on
    # screen as selected, wherever its row is now.
    key = f"runs:table:{zlib.crc32(' '.join(ids).encode()):08x}"
    event = st.dataframe(table, hide_index=True, height=min(400, 38 + 35 * len(runs)), key=key,
                         on_select="rerun", selection_mode="single-row",
                         selection_default={"selection": {"rows": [ids.index(shown)] if shown in ids else []}},
                         column_config={"Run": st.column_config.TextColumn(width="medium"),
                                        "Status": st.column_config.TextColumn(width="small")})
    st.caption("Click a row to see that run.")
    rows = list(event.selection.rows)
    seen, st.session_state[SEEN] = st.session_state.get(SEEN, (key, rows)), (key, rows)
    if seen == (key, rows) or seen[0] != key:  # a table drawn anew has had no click yet
        return None
    return ids[rows[0]] if rows and rows[0] < len(ids) else None


def json_height(value) -> int:
    """A box for a JSON value: as tall as its lines, at most 280 px (then it scrolls)."""
    return min(280, 48 + 24 * len(json.dumps(value, indent=2).splitlines()))


def facts(run) -> None:
    st.subheader(f"Run {run.id}", anchor=False)
    retry = f" (retry of {run.parent_run_id})" if run.parent_run_id else ""
    status_badge(run.status)  # above the facts: never squeezed into a narrow column
    worker = f" · on worker {worker_label(run.worker)}" if run.worker else ""
    st.caption(f"Feed **{run.feed_name}** · trigger {run.trigger} · attempt {run.attempt}{retry} · "
               f"started {when(run.started_at)}{worker}")
    took, written, loaded = st.columns(3)
    took.metric("Duration", duration(run_seconds(run)))
    written.metric("Records written", run.records_written)
    loaded.metric("Records loaded", run.records_loaded)


def trigger(run) -> None:
    fire = f" (schedule fire {when(run.scheduled_for)})" if run.scheduled_for else ""
    st.markdown(f"**Trigger:** {run.trigger}{fire}")
    if run.trigger == "webhook" or run.trigger_payload:
        st.markdown("**Webhook payload**")
        if run.trigger_payload:
            with st.container(height=json_height(run.trigger_payload)):
                st.json(run.trigger_payload)
        else:
            st.caption("The webhook call carried no payload.")
    counts = run.request_counts or {}
    if counts:
        st.markdown(f"**HTTP requests:** {counts.get('requests', 0):,} ({counts.get('retries', 0):,} retries, "
                    f"{counts.get('waits', 0):,} waits for {counts.get('waited_s', 0):.1f} s, "
                    f"{counts.get('bytes', 0):,} bytes received, {counts.get('errors', 0):,} errors)")


def attempts(run) -> None:
    chain = attempts_of(run)
    if len(chain) < 2:
        st.caption("The only attempt: no retry." if run.status in FINAL_STATUSES else "The first attempt.")
        return
    st.dataframe(pd.DataFrame([{
        "Attempt": r.attempt, "Run": r.id + ("  (this run)" if r.id == run.id else ""), "Status": r.status,
        "Started": when(r.started_at or r.created_at), "Error": r.error or "",
    } for r in chain]), hide_index=True)


def states(run) -> None:
    before, after = st.columns(2)
    with before:
        st.markdown("**State before**")
        with st.container(height=json_height(run.state_before or {})):
            st.json(run.state_before or {})
    with after:
        st.markdown("**State after**")
        with st.container(height=json_height(run.state_after or {})):
            st.json(run.state_after or {})
    if run.checkpoints:
        st.markdown("**Checkpoints**")
        st.dataframe(pd.DataFrame([{"At": c["at"], "Records": c["records"], "State": json.dumps(c["state"])}
                                   for c in run.checkpoints]), hide_index=True)


def destinations(run) -> None:
    if not run.destination_results:
        st.caption("Nothing was loaded yet." if run.status not in FINAL_STATUSES else "No destination was loaded.")
        return
    st.dataframe(pd.DataFrame([{"Destination": name, **result} for name, result in run.destination_results.items()]),
                 hide_index=True)
    st.markdown("**Schema changes**")
    schema_history.render_run_change(run.schema_changes)


st.title("Runs", anchor=False)
keep_up_to_date("runs")  # new runs and status changes show up without a click
feed_col, status_col = st.columns(2)
feeds = [ALL, *[f.name for f in list_feeds()]]
requested_run = st.query_params.get("run")
feed = feed_col.selectbox("Feed", feeds, key="runs:feed", format_func=lambda n: n or "All feeds")
statuses = status_col.multiselect("Status", [s for s in STATUS_CHOICES if s not in ("never run", "paused")],
                                  key="runs:status", placeholder="Any status")
runs = [r for r in list_runs(feed or None, limit=200) if not statuses or r.status in statuses]

if not runs and not requested_run and not (feed or statuses):
    st.info("No runs yet. Start one with Run now on the Feeds page.")
    st.stop()

if requested_run and st.session_state.get(FROM_LINK) != requested_run:
    st.session_state[FROM_LINK] = requested_run  # a link (Open in Runs) chose the run
    st.session_state[CHOSEN] = requested_run
run_id = st.session_state.get(CHOSEN) or (runs[0].id if runs else None)
try:
    run = get_run(run_id) if run_id else None
except NotFound:
    run = None
if run is None and runs:
    run = get_run(runs[0].id)

waiting = queue_reasons(runs)
if runs:
    clicked = runs_table(runs, waiting, run.id if run else None)
    if clicked and clicked != (run.id if run else None):
        st.session_state[CHOSEN] = clicked
        run = get_run(clicked)
else:
    st.info("No run matches these filters.")
if run is None:
    st.stop()
st.query_params["run"] = run.id
st.session_state[FROM_LINK] = run.id

facts(run)
if run.status == "queued":
    st.info(waiting.get(run.id) or queue_reasons([run]).get(run.id), icon=":material/schedule:")
if run.error:
    where = f" (line {run.error_line} of the script)" if run.error_line and "line" not in run.error else ""
    st.error(run.error + where, icon=":material/error:")

log_tab, state_tab, trigger_tab, attempts_tab, destinations_tab, deliveries_tab = st.tabs(
    ["Log", "State", "Trigger", "Attempts", "Destinations", "Deliveries"])
with log_tab:
    render_run_log(run.id, key="runs:log", summary=False)
with state_tab:
    states(run)
with trigger_tab:
    trigger(run)
with attempts_tab:
    attempts(run)
with destinations_tab:
    destinations(run)
with deliveries_tab:
    deliveries(run)
