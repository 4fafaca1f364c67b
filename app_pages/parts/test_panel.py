"""A script test on screen: its logs live while it runs (refreshed every second, or at once
with the refresh icon), then the preview: JSON and TABULAR tabs, the record count, the
metadata the script saved, the duration, and an error with its line in the script."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app_pages.parts.common import count_of
from app_pages.view_models.feed_editor import error_line_text
from app_pages.view_models.test_sessions import current_test

LIVE_LOG_LINES = 200


def render_live_logs(owner_key: str) -> None:
    """Show the running test's logs; when it ends, rerun the page so that the result shows."""
    _live_logs(owner_key)


@st.fragment(run_every="1s")
def _live_logs(owner_key: str) -> None:
    session = current_test(owner_key)
    if session is None:
        return
    status, stop, refresh = st.columns([10, 2, 1], vertical_alignment="center")
    if session.stopping:
        status.caption(f":material/progress_activity: Stopping the test… {session.elapsed_s():.0f} s")
    else:
        status.caption(f":material/progress_activity: Testing… {session.elapsed_s():.0f} s")
    if stop.button("Stop", icon=":material/stop:", key=f"{owner_key}:stop-test", disabled=session.stopping,
                   help="Stop the script; nothing is kept of this test but its logs", width="stretch"):
        session.stop()
    refresh.button("", icon=":material/refresh:", key=f"{owner_key}:refresh-logs", help="Refresh the logs now")
    lines = session.lines()
    st.code("\n".join(lines[-LIVE_LOG_LINES:]) or "(no output yet)", language=None, wrap_lines=True)
    if not session.running:
        st.rerun()


def render_result(summary: dict, script: str | None = None) -> None:
    """The outcome of a finished test, as app_pages.view_models.feed_editor.summarise_test describes it."""
    if summary.get("ok") and summary.get("stopped_at"):
        st.success(f"Test succeeded, stopped after the first {count_of(summary['stopped_at'], 'record')} "
                   f"in {summary['duration_s']:.2f} s: Run to completion is off, so the script stops once the "
                   "preview is full. Turn it on for the total count and the metadata the script saves.",
                   icon=":material/check_circle:")
    elif summary.get("ok"):
        st.success(f"Test succeeded: {count_of(summary['count'], 'record')} in {summary['duration_s']:.2f} s.",
                   icon=":material/check_circle:")
    elif summary.get("status") == "cancelled":
        st.warning(f"Test stopped after {summary.get('duration_s', 0):.1f} s, before the script finished.",
                   icon=":material/stop_circle:")
    else:
        st.error(f"Test failed: {summary.get('error') or 'the script did not succeed'}", icon=":material/error:")
        _error_location(summary.get("error_line"), script)
    lines = len(summary.get("logs") or [])
    with st.expander(f"Logs ({count_of(lines, 'line')})", expanded=not summary.get("ok")):
        st.code("\n".join(summary.get("logs") or []) or "(no output)", language=None, wrap_lines=True)
    if summary.get("ok") or summary.get("records"):
        _preview(summary)


def _error_location(line: int | None, script: str | None) -> None:
    text = error_line_text(script or "", line)
    if line and text is not None:
        st.markdown(f"In the script, **line {line}**:")
        st.code(f"{line:>4} | {text}", language="python")
    elif line:
        st.markdown(f"In the script, **line {line}**.")


def _preview(summary: dict) -> None:
    records = summary.get("records") or []
    st.subheader("Preview", anchor=False)
    count, shown, took = st.columns(3)
    count.metric("Records", summary.get("count", 0))
    shown.metric("Shown", len(records))
    took.metric("Duration", f"{summary.get('duration_s', 0):.2f} s")
    json_tab, table_tab = st.tabs(["JSON", "TABULAR"])
    with json_tab:
        st.container(height=360).json(records, expanded=2)  # a fixed height: Load Type and Feed Name stay near
    with table_tab:
        st.dataframe(records_frame(records), hide_index=True)
    st.markdown("**Metadata saved by the script**")
    if summary.get("metadata") is None:
        st.caption("The script did not call metadata.save(); the feed's state stays as it is.")
    else:
        st.json(summary["metadata"])


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One column per top-level field, as the warehouse will have them; nested values as JSON."""
    rows = [{k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()} for r in records]
    return pd.DataFrame(rows)
