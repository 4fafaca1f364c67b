"""The login gate in front of every page, and the sidebar line that says how access works.

The decisions live in app_pages.access; this only asks and renders.
"""

from __future__ import annotations

import streamlit as st

from app_pages.access import (
    LOCAL_ONLY_MESSAGE,
    MODE_LOCAL,
    MODE_OIDC,
    MODE_PASSWORD,
    access_mode,
    current_secrets,
    is_loopback,
    oidc_provider,
    password_hash_setting,
    password_throttle,
)

_GRANTED = "tributary:password-ok"


def require_access() -> str:
    """Stop the script unless this user may pass; returns the access mode."""
    secrets = current_secrets()
    mode = access_mode(secrets)
    if mode == MODE_OIDC:
        _require_oidc(secrets)
        st.session_state["tributary:owner"] = st.user.get("email") or st.user.get("sub") or "user"
    elif mode == MODE_PASSWORD:
        _require_password(password_hash_setting(secrets))
        st.session_state["tributary:owner"] = "team"
    else:
        # The server's middleware already refuses remote clients; this covers any other host.
        ip = st.context.ip_address
        if isinstance(ip, str) and not is_loopback(ip):
            st.error(LOCAL_ONLY_MESSAGE, icon=":material/lock:")
            st.stop()
        st.session_state["tributary:owner"] = "local"
    return mode


def _require_oidc(secrets: dict) -> None:
    if st.user.get("is_logged_in"):
        return
    st.title("Tributary", anchor=False)
    st.write("Sign in to work on your team's data feeds.")
    if st.button("Log in", type="primary", icon=":material/login:", key="access:login"):
        st.login(oidc_provider(secrets))
    st.stop()


def _require_password(encoded: str) -> None:
    if st.session_state.get(_GRANTED):
        return
    st.title("Tributary", anchor=False)
    with st.form("access:password-form"):
        password = st.text_input("Team password", type="password", key="access:password")
        submitted = st.form_submit_button("Unlock", type="primary", icon=":material/lock_open:")
    if submitted:
        ip = st.context.ip_address  # the throttle counts each client address on its own
        client = ip if isinstance(ip, str) else None  # None: this computer (or a test's stand-in)
        wait = password_throttle.wait_s(client)
        if wait > 0:
            st.error(f"Too many wrong passwords: try again in {wait:.0f} s.")
        elif password_throttle.check(password or "", encoded, client):
            st.session_state[_GRANTED] = True
            st.rerun()
        else:
            st.error("That is not the team password.")
    st.stop()


def sidebar_status(mode: str) -> None:
    with st.sidebar:
        if mode == MODE_LOCAL:
            st.caption(":material/lock: **Local only.** No login is configured, "
                       "so Tributary serves this computer only.")
        elif mode == MODE_PASSWORD:
            st.caption(":material/group: Signed in with the team password.")
            if st.button("Lock", icon=":material/lock:", key="access:lock"):
                st.session_state.pop(_GRANTED, None)
                st.rerun()
        elif mode == MODE_OIDC:
            st.caption(f":material/person: Signed in as {st.user.get('email') or st.user.get('name') or 'you'}.")
            if st.button("Log out", icon=":material/logout:", key="access:logout"):
                st.logout()
