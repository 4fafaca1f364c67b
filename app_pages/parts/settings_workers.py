"""The Settings page's Workers tab: the workers seen in the last minute (celery executor)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages.view_models.workers_view import workers_overview


def workers_tab() -> None:
    overview = workers_overview()
    if not overview.distributed:
        st.caption(f"Runs execute in this app's own process (TRIBUTARY_EXECUTOR={overview.executor}): "
                   "there are no workers to show.")
        return
    st.caption("Workers (`python -m core.worker`) seen in the last minute, the queues they take runs from, "
               "and their load: runs executing / runs at a time.")
    if not overview.rows:
        st.warning("No worker seen in the last minute: queued runs wait until a worker starts.",
                   icon=":material/warning:")
        return
    st.dataframe(pd.DataFrame(overview.rows), hide_index=True)
    st.button("Refresh", key="settings:workers-refresh", icon=":material/refresh:")
