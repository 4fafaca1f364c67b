"""Small presentation helpers shared by the pages."""

from __future__ import annotations

import html
from datetime import datetime, timezone

import streamlit as st

STATUS_COLORS = {
    "succeeded": "green", "failed": "red", "cancelled": "gray", "queued": "blue", "running": "blue",
    "loading": "violet", "never run": "gray", "paused": "orange",
}
STATUS_ICONS = {
    "succeeded": ":material/check_circle:", "failed": ":material/error:", "cancelled": ":material/block:",
    "queued": ":material/schedule:", "running": ":material/progress_activity:", "loading": ":material/upload:",
    "never run": ":material/radio_button_unchecked:", "paused": ":material/pause_circle:",
}
_FLASH_KEY = "tributary:flash"


def owner() -> str:
    """Whose drafts these are: set by the access gate in ui.py."""
    return st.session_state.get("tributary:owner", "local")


def status_badge(status: str) -> None:
    st.badge(status, icon=STATUS_ICONS.get(status), color=STATUS_COLORS.get(status, "gray"))


def breakable(name: str) -> str:
    """A name (as HTML, for st.markdown with unsafe_allow_html) that wraps at its separators
    (orders_daily_eu -> orders_ / daily_ / eu) rather than mid-word when its column is narrow:
    a <wbr> after each _ - . / , which copying the name leaves out."""
    name = html.escape(name)
    for separator in "_-./":
        name = name.replace(separator, separator + "<wbr>")
    return name


def count_of(number: int, noun: str) -> str:
    """'1 record', '2 records'."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def sentence_start(text: str) -> str:
    """Capitalise the first letter only ("authorization URL" -> "Authorization URL")."""
    return text[:1].upper() + text[1:]


def show_problems(problems: list[tuple[str, str]]) -> None:
    for field, message in problems:
        st.error(f"**{sentence_start(field)}** {message}", icon=":material/error:")


def when(moment: datetime | None, seconds: bool = True) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC times
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def saved_time(iso: str) -> str:
    """A draft's save time (ISO, UTC) as a user reads it."""
    try:
        return when(datetime.fromisoformat(iso))
    except ValueError:
        return iso


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


def flash(message: str, icon: str = ":material/check_circle:") -> None:
    """A message for the next page the user sees (it survives st.switch_page)."""
    st.session_state[_FLASH_KEY] = (message, icon)


def show_flash() -> None:
    if _FLASH_KEY in st.session_state:
        message, icon = st.session_state.pop(_FLASH_KEY)
        st.success(message, icon=icon)


def bind(key: str, initial) -> str:
    """Give a widget its starting value from a draft, once: afterwards the widget's own state
    rules until the widget is gone (a page switch), when the draft's value comes back."""
    if key not in st.session_state:
        st.session_state[key] = initial
    return key


def forget_keys(prefix: str) -> None:
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]
