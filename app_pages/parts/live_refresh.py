"""Pages that keep themselves up to date: a small fragment polls core.run_details.change_marker
(one cheap query) and reruns the page only when it changed, e.g. a run a schedule or a webhook
started, or one that ended. Faster while a run is active, slow when nothing is."""

from __future__ import annotations

import streamlit as st

from core.run_details import active_count, change_marker

ACTIVE_EVERY_S = 2.0  # while a run is queued, running or loading
IDLE_EVERY_S = 5.0  # nothing active: only the marker is read, the page stays as it is


def poll_interval(marker: tuple) -> float:
    return ACTIVE_EVERY_S if active_count(marker) else IDLE_EVERY_S


def changed_since(key: str, marker: tuple) -> bool:
    """Whether the marker differs from the one the page was last drawn with (and remember it)."""
    previous = st.session_state.get(key)
    st.session_state[key] = marker
    return previous is not None and previous != marker


def keep_up_to_date(page: str) -> None:
    """Call once near the top of a page: the page reruns by itself when a run changes."""
    key = f"{page}:change-marker"
    marker = change_marker()
    st.session_state[key] = marker  # what this drawing of the page shows

    def poll() -> None:
        if changed_since(key, change_marker()):
            st.rerun(scope="app")

    st.fragment(run_every=poll_interval(marker))(poll)()
