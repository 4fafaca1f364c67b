"""A script test on screen: its logs live while it runs (refreshed every second, or at once
with the refresh icon), then the preview: JSON and TABULAR tabs, the record count, the
metadata the script saved, the duration, and an error with its line in the script. Beside the
logs, the requests the script made (the request inspector, page by page, the Custom Auth token
call marked); under the preview, the schema its records make and what a run would do to the
feed's tables."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app_pages.parts.common import count_of
from app_pages.view_models.feed_editor import error_line_text
from app_pages.view_models.test_sessions import current_test

LIVE_LOG_LINES = 200
REQUESTS_PAGE_SIZE = 20
STATUS_WORDS = {"same": "unchanged", "new": "added", "widened": "widened", "rejected": "rejected",
                "absent": "not in the records"}


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
    requests = summary.get("requests") or []
    if requests:
        logs_column, requests_column = st.columns(2)
        with logs_column:
            _logs(summary)
        with requests_column:
            _requests(summary)
    else:
        _logs(summary)
    if summary.get("ok") or summary.get("records"):
        _preview(summary)
        _schema(summary.get("schema"))


def _logs(summary: dict) -> None:
    lines = len(summary.get("logs") or [])
    with st.expander(f"Logs ({count_of(lines, 'line')})", expanded=not summary.get("ok")):
        st.code("\n".join(summary.get("logs") or []) or "(no output)", language=None, wrap_lines=True)


def _requests(summary: dict) -> None:
    """The request inspector: the script's requests, page by page, and one's details."""
    requests = summary.get("requests") or []
    counts = summary.get("request_counts") or {}
    with st.expander(f"Requests ({count_of(counts.get('requests', len(requests)), 'request')})",
                     expanded=not summary.get("ok")):
        st.caption(requests_caption(counts, len(requests)))
        key = f"{summary.get('session_id', 'test')}:requests"
        pages = max(1, -(-len(requests) // REQUESTS_PAGE_SIZE))
        page = 1
        if pages > 1:
            page = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1,
                                       key=f"{key}:page"))
        shown = requests_page(requests, page)
        st.dataframe(pd.DataFrame(request_rows(shown)), hide_index=True)
        chosen = st.selectbox("Request", [r.get("n") for r in shown], key=f"{key}:{page}:chosen",
                              format_func=lambda n: request_label(next(r for r in shown if r.get("n") == n)))
        request = next((r for r in shown if r.get("n") == chosen), None)
        if request is not None:
            _request_details(request)


def _request_details(request: dict) -> None:
    if request.get("kind") == "token":
        st.caption(":material/key: The Custom Auth token call: its answer is not kept (it holds the token).")
    if request.get("error"):
        st.error(request["error"], icon=":material/error:")
    for seconds, why in request.get("waits") or []:
        st.caption(f"waited {seconds:.1f} s: {why}")
    if request.get("request_headers"):
        st.caption("Request headers (values not kept): " + ", ".join(request["request_headers"]))
    body = request.get("body")
    if body:
        more = f" (first {len(body.encode('utf-8')):,} bytes of {request.get('bytes') or 0:,})" \
            if request.get("body_truncated") else ""
        st.markdown(f"**Response body**{more}")
        st.code(body, language="json" if "json" in (request.get("content_type") or "") else None)


def requests_caption(counts: dict, recorded: int) -> str:
    retries = counts.get("retries", 0)
    text = (f"{retries:,} {'retry' if retries == 1 else 'retries'}, {count_of(counts.get('waits', 0), 'wait')} "
            f"({counts.get('waited_s', 0):.1f} s), {_size(counts.get('bytes', 0))} received")
    if counts.get("dropped"):
        text += f"; the first {recorded} are listed"
    return text


def requests_page(requests: list[dict], page: int) -> list[dict]:
    start = (page - 1) * REQUESTS_PAGE_SIZE
    return requests[start:start + REQUESTS_PAGE_SIZE]


def request_label(request: dict) -> str:
    mark = " · token call" if request.get("kind") == "token" else ""
    return f"#{request.get('n')} {request.get('method')} {request.get('url')}{mark}"


def request_rows(requests: list[dict]) -> list[dict]:
    return [{
        "#": r.get("n"), "Kind": "token call" if r.get("kind") == "token" else "", "Method": r.get("method"),
        "URL": r.get("url"), "Status": str(r["status"]) if r.get("status") is not None else (r.get("error") or ""),
        "ms": r.get("duration_ms"), "Size": _size(r.get("bytes")) if r.get("bytes") is not None else "",
        "Retries": r.get("retries") or 0, "Waited (s)": round(sum(w[0] for w in r.get("waits") or []), 1),
    } for r in requests]


def _size(count) -> str:
    count = count or 0
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


def _schema(schema: dict | None) -> None:
    """The columns the records make, beside each destination table's current ones."""
    if not schema or not schema.get("columns"):
        return
    st.subheader("Detected schema", anchor=False)
    st.dataframe(pd.DataFrame([{"Field": c["field"], "Type": c["type"], "Nulls": c["nulls"],
                                "Types seen": ", ".join(c["types_seen"])} for c in schema["columns"]]),
                 hide_index=True)
    for view in schema.get("destinations") or []:
        st.markdown(f"**{view['destination']}**: table {view['table']}")
        if view.get("error"):
            st.warning(view["error"], icon=":material/warning:")
            continue
        if not view.get("table_exists"):
            st.caption("The table does not exist yet: the feed's first run creates it with these columns.")
            continue
        st.caption(schema_changes_caption(view["columns"]))
        if effect := policy_effect(view["columns"], schema.get("policy") or "evolve"):
            st.warning(effect, icon=":material/schema:")
        st.dataframe(pd.DataFrame(schema_rows(view["columns"])), hide_index=True)


def schema_changes_caption(columns: list[dict]) -> str:
    counts = {status: sum(1 for c in columns if c["status"] == status) for status in STATUS_WORDS}
    if not (counts["new"] or counts["widened"] or counts["rejected"]):
        return "A run with these records leaves the table's columns as they are."
    parts = [f"{counts['new']} added" if counts["new"] else "", f"{counts['widened']} widened" if counts["widened"] else "",
             f"{counts['rejected']} rejected" if counts["rejected"] else ""]
    return "A run with these records: " + ", ".join(p for p in parts if p) + "."


def policy_effect(columns: list[dict], policy: str) -> str | None:
    """What the feed's schema policy would do with the change these records make."""
    added = [c["column"] or c["field"] for c in columns if c["status"] == "new"]
    widened = [c["column"] for c in columns if c["status"] == "widened"]
    if policy == "freeze" and (added or widened):
        change = ", ".join([f"add {name}" for name in added] + [f"widen {name}" for name in widened])
        return (f"The feed's schema policy is freeze: a run with these records would fail before loading "
                f"anything, as it would {change}.")
    if policy == "discard_new_columns" and added:
        return (f"The feed's schema policy is discard new columns: a run would load these records without "
                f"{', '.join(added)}, and keep the table's columns.")
    return None


def schema_rows(columns: list[dict]) -> list[dict]:
    return [{"Column": c["column"] or "", "Field": c["field"] or "", "Current": c["current"] or "",
             "Detected": c["detected"] or "", "Change": STATUS_WORDS.get(c["status"], c["status"]),
             "Why": c["why"] or ""} for c in columns]


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
