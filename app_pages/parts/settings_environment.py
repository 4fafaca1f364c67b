"""The Settings page's read-only tabs: the runner's health, outgoing mail, the store and data.
All of it comes from environment variables, so each row says which one sets it."""

from __future__ import annotations

import streamlit as st

from app_pages.view_models.settings_view import RUNNER_ENV, SettingRow, email_ready, runner_status, smtp_rows, store_rows

_RUNNER_STATUS = "settings:runner-status"


def settings_table(rows: list[SettingRow]) -> None:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| Setting | Value | Set by |", "|---|---|---|"]
    lines += [f"| {cell(r.label)} | {cell(r.value)} | `{r.env}` |" for r in rows]
    st.markdown("\n".join(lines))


def runner_tab() -> None:
    # Checked once per visit, not on every rerun of the page: an engine that does not answer
    # makes the check wait for its timeout.
    if _RUNNER_STATUS not in st.session_state:
        st.session_state[_RUNNER_STATUS] = runner_status()
    status = st.session_state[_RUNNER_STATUS]
    st.markdown(f"**In use: `{status.runner}`**")
    st.caption(f"Chosen by the {RUNNER_ENV} environment variable (subprocess, subprocess-unisolated or docker); restart Tributary "
               "after changing it.")
    if status.ok:
        st.success(status.message, icon=":material/check_circle:")
    else:
        st.error(status.message, icon=":material/error:")
    if status.details:
        settings_table([SettingRow(*row) for row in status.details])
    if st.button("Check again", key="settings:runner-recheck", icon=":material/refresh:"):
        st.session_state.pop(_RUNNER_STATUS)
        st.rerun()


def notifications_tab() -> None:
    st.caption("Email watchers send through this SMTP server. Set it with the TRIBUTARY_SMTP_* environment "
               "variables below and restart Tributary; the password is never shown.")
    if not email_ready():
        st.warning("No SMTP host is set: email watchers cannot deliver. Webhook watchers still work.",
                   icon=":material/mail_off:")
    settings_table(smtp_rows())


def store_tab() -> None:
    st.caption("Where Tributary keeps its state, and how many runs it executes at once. Set by environment "
               "variables; restart Tributary after changing them.")
    settings_table(store_rows())
