"""A run's log on screen, growing while the run is active (the page stays usable: the run
itself executes in the background, see core.runs.start_run)."""

from __future__ import annotations

import streamlit as st

from app_pages.parts.common import count_of, duration, status_badge
from common.errors import Conflict, NotFound
from core.run_log import size_text
from core.runs import ACTIVE_STATUSES, cancel_run, get_run, read_log_tail, run_log_size

TAIL_LINES = 400
TAIL_BYTES = 512 * 1024  # what a page keeps of a log: its end, read from the end of the file


def _log_state(run_id: str) -> tuple[str, int, bool]:
    """The end of the log so far (at most TAIL_BYTES), the number of lines read, and whether
    earlier output was skipped. Only the new bytes are read on each refresh, and of a log that
    grew by more than TAIL_BYTES only its last TAIL_BYTES."""
    key = f"runlog:{run_id}"
    text, offset, earlier, lines = st.session_state.get(key, ("", 0, False, 0))
    more, offset, skipped = read_log_tail(run_id, TAIL_BYTES, offset)
    text = more if skipped else text + more
    earlier, lines = earlier or skipped, lines + more.count("\n")
    if len(text) > TAIL_BYTES:
        text = text[len(text) - TAIL_BYTES:]
        text, earlier = text[text.find("\n") + 1:], True
    st.session_state[key] = (text, offset, earlier, lines)
    return ("… earlier output not shown …\n" if earlier else "") + text, lines, earlier


def _log_text(run_id: str) -> str:
    return _log_state(run_id)[0]


def _tail(text: str) -> str:
    lines = text.splitlines()
    hidden = len(lines) - TAIL_LINES
    shown = "\n".join(lines[-TAIL_LINES:])
    return f"… {hidden} earlier lines …\n{shown}" if hidden > 0 else shown


def render_run_log(run_id: str, key: str, summary: bool = True) -> None:
    """Live while the run is active; a static log once it has ended (with its status and
    numbers above it unless the page shows them already)."""
    try:
        run = get_run(run_id)
    except NotFound as exc:
        st.warning(str(exc))
        return
    if run.status in ACTIVE_STATUSES:
        _live(run_id, key)
        return
    if summary:
        with st.container(horizontal=True, vertical_alignment="center"):
            status_badge(run.status)
            st.caption(run_summary_line(run), width="content")
    st.code(_tail(_log_text(run_id)) or "(empty log)", language=None, wrap_lines=True)


@st.fragment(run_every="1s")
def _live(run_id: str, key: str) -> None:
    run = get_run(run_id)
    header, refresh, cancel = st.columns([10, 1, 2], vertical_alignment="center")
    with header:
        status_badge(run.status)
    refresh.button("", icon=":material/refresh:", key=f"{key}:refresh", help="Refresh the log now")
    if cancel.button("Cancel run", icon=":material/stop_circle:", key=f"{key}:cancel"):
        try:
            cancel_run(run_id)
        except Conflict as exc:
            st.warning(str(exc))
    text, lines, earlier = _log_state(run_id)
    st.caption(f"over {lines} log lines so far ({size_text(run_log_size(run_id))})" if earlier
               else f"{lines} log lines so far")
    st.code(_tail(text) or "(waiting for output)", language=None, wrap_lines=True)
    if run.status not in ACTIVE_STATUSES:
        st.rerun()  # the whole page: statuses, records and the final log


def run_seconds(run) -> float | None:
    if run.started_at and run.finished_at:
        return (run.finished_at - run.started_at).total_seconds()
    return None


def run_summary_line(run) -> str:
    return f"{run.status} · {duration(run_seconds(run))} · {count_of(run.records_loaded, 'record')} loaded"
