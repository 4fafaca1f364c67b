"""Feeds: every feed with its last run, next run, records and tags; filters; and the actions
Run now, Test, Edit, Pause/Resume and Delete. A run started here shows its log live below."""

import streamlit as st

from app_pages.parts.common import breakable, flash, show_flash, status_badge, when
from app_pages.parts.live_refresh import keep_up_to_date
from app_pages.parts.run_panel import render_run_log
from app_pages.parts.test_panel import render_live_logs, render_result
from app_pages.parts.trigger_webhook import show_new_tokens
from common.errors import Conflict, NotFound, TributaryError
from app_pages.view_models.feed_editor import summarise_test
from app_pages.view_models.feed_overview import STATUS_CHOICES, FeedRow, all_tags, feed_rows
from core.feeds import delete_feed, set_paused
from core.bootstrap import start_run
from app_pages.view_models.test_sessions import current_test, start_feed_test

WATCHED_RUN = "feeds:watched-run"  # (feed, run id) started from this page
TESTED_FEED = "feeds:tested-feed"
DELETE_DIALOG = "feeds:delete"
TEST_KEY = "feeds-page-test"


def _close_delete() -> None:
    st.session_state.pop(DELETE_DIALOG, None)
    for key in ("feeds:delete-drop", "feeds:delete-typed"):  # the next delete asks afresh
        st.session_state.pop(key, None)


@st.dialog("Delete feed", on_dismiss=_close_delete)
def delete_dialog(name: str) -> None:
    st.write(f"Delete the feed **{name}** and its run history?")
    drop = st.checkbox("Also delete its data in the warehouse", key="feeds:delete-drop",
                       help="Left unticked, the table and files the feed loaded stay where they are.")
    confirmed = True
    if drop:
        st.warning("Its table and files are dropped from the warehouse: the data cannot be recovered.",
                   icon=":material/warning:")
        typed = st.text_input(f"Type {name} to delete the feed with its data", key="feeds:delete-typed",
                              placeholder=name, live=True)
        confirmed = (typed or "").strip() == name
    delete, cancel = st.columns(2)
    if delete.button("Yes, delete", type="primary", key="feeds:delete-confirm", width="stretch",
                     disabled=not confirmed, help=None if confirmed else "Type the feed's name first"):
        try:
            delete_feed(name, drop_data=drop)
        except (Conflict, NotFound, TributaryError) as exc:
            st.error(str(exc))
            return
        _close_delete()
        flash(f"Feed {name} deleted" + (" with its data." if drop else "; its data stays in the warehouse."),
              ":material/delete:")
        st.rerun()
    if cancel.button("Cancel", key="feeds:delete-cancel", width="stretch"):
        _close_delete()
        st.rerun()


def run_now(name: str) -> None:
    try:
        run = start_run(name, trigger="manual")
    except (Conflict, NotFound) as exc:
        st.session_state["feeds:error"] = str(exc)
        return
    st.session_state[WATCHED_RUN] = (name, run.id)


def test_now(name: str) -> None:
    start_feed_test(TEST_KEY, name)
    st.session_state[TESTED_FEED] = name


def filters() -> tuple[str, list[str], list[str]]:
    text, tags, statuses = st.columns([2, 2, 2])
    name = text.text_input("Name", key="feeds:filter-name", live=True, placeholder="Filter by name",
                           type="search", icon=":material/search:")
    chosen_tags = tags.multiselect("Tags", all_tags(), key="feeds:filter-tags", placeholder="Any tag")
    chosen_statuses = statuses.multiselect("Status", STATUS_CHOICES, key="feeds:filter-status",
                                           placeholder="Any status")
    return name or "", chosen_tags, chosen_statuses


# From 1024 px up (a main area of about 560 px): the name wraps at its separators, a status
# badge fits its column, Run now keeps its label (the ⋮ button goes below it when narrow).
COLUMNS = [3, 2.2, 1.5, 1.2, 2.6]
HEADERS = ["Feed", "Last run (UTC)", "Next run", "Last run records", ""]


MORE_GENERATION = "feeds:more-generation"


def more_key(name: str) -> str:
    return f"feeds:more:{name}:{st.session_state.get(MORE_GENERATION, 0)}"


def _close_more(name: str) -> None:
    """The popover closes behind what its action opens: under a new key it is a new popover,
    drawn closed (the browser keeps an open popover open across reruns)."""
    st.session_state[MORE_GENERATION] = st.session_state.get(MORE_GENERATION, 0) + 1


def _ask_delete(name: str) -> None:
    _close_more(name)
    st.session_state[DELETE_DIALOG] = name  # the dialog opens outside the popover, below


def _test_from_more(name: str) -> None:
    _close_more(name)
    test_now(name)


def _pause_from_more(name: str, paused: bool) -> None:
    _close_more(name)
    set_paused(name, paused)


def feed_row(row: FeedRow) -> None:
    cells = st.columns(COLUMNS, vertical_alignment="center")
    about = [f":material/key: {breakable(row.connection)}"] if row.connection else []
    about += [f":material/sell: {', '.join(row.tags)}"] if row.tags else []
    cells[0].markdown(f"**{breakable(row.name)}**" + (f"  \n:gray[{' · '.join(about)}]" if about else ""),
                      unsafe_allow_html=True)  # names are letters, digits and _ (core/validation.py)
    with cells[1]:
        with st.container(horizontal=True, gap="small"):
            status_badge(row.status)
            if row.paused:
                status_badge("paused")
        st.caption(when(row.last_run_at, seconds=False).removesuffix(" UTC"))
    cells[2].write(row.next_run)
    cells[3].write("—" if row.records_loaded is None else f"{row.records_loaded:,}")
    with cells[4], st.container(horizontal=True, gap="small", vertical_alignment="center"):
        if st.button("Run now", icon=":material/play_arrow:", key=f"feeds:run:{row.name}", type="primary",
                     disabled=row.active, help="A run is in progress" if row.active else None):
            run_now(row.name)
            st.rerun()
        with st.popover("", icon=":material/more_vert:", help="More actions", key=more_key(row.name)):
            st.button("Test", icon=":material/science:", key=f"feeds:test:{row.name}", width="stretch",
                      on_click=_test_from_more, args=(row.name,))
            if st.button("Edit", icon=":material/edit:", key=f"feeds:edit:{row.name}", width="stretch"):
                st.switch_page("app_pages/edit_feed.py", query_params={"feed": row.name})
            label, icon = ("Resume", ":material/play_circle:") if row.paused else ("Pause", ":material/pause_circle:")
            st.button(label, icon=icon, key=f"feeds:pause:{row.name}", width="stretch",
                      on_click=_pause_from_more, args=(row.name, not row.paused))
            st.button("Delete", icon=":material/delete:", key=f"feeds:delete:{row.name}", width="stretch",
                      on_click=_ask_delete, args=(row.name,))


def watched_run() -> None:
    name, run_id = st.session_state[WATCHED_RUN]
    with st.container(border=True):
        title, links, close = st.columns([4, 1, 1], vertical_alignment="center")
        title.markdown(f"**Run of {name}** · `{run_id}`")
        links.page_link("app_pages/runs.py", label="Open in Runs", icon=":material/open_in_new:",
                        query_params={"run": run_id})
        if close.button("Close", key="feeds:close-run", icon=":material/close:"):
            st.session_state.pop(WATCHED_RUN, None)
            st.rerun()
        render_run_log(run_id, key="feeds:run-log")


def tested_feed() -> None:
    name = st.session_state[TESTED_FEED]
    session = current_test(TEST_KEY)
    with st.container(border=True):
        title, close = st.columns([5, 1], vertical_alignment="center")
        title.markdown(f"**Test of {name}** (nothing is loaded or saved)")
        if close.button("Close", key="feeds:close-test", icon=":material/close:"):
            st.session_state.pop(TESTED_FEED, None)
            st.rerun()
        if session is None:
            return
        if session.running:
            render_live_logs(TEST_KEY)
        else:
            render_result(summarise_test(session))


title, new = st.columns([4, 1.4], vertical_alignment="bottom")
title.title("Feeds", anchor=False)
new.page_link("app_pages/new_feed.py", label="New feed", icon=":material/add_circle:")
keep_up_to_date("feeds")  # a run a schedule or a webhook starts shows up without a click
show_flash()
show_new_tokens()  # a webhook token a SAVE just generated: the one time it can be seen
if "feeds:error" in st.session_state:
    st.error(st.session_state.pop("feeds:error"), icon=":material/block:")
if WATCHED_RUN in st.session_state:
    watched_run()
if TESTED_FEED in st.session_state:
    tested_feed()

name_filter, tag_filter, status_filter = filters()
rows = feed_rows(name_filter, tag_filter, status_filter)
if not rows:
    if name_filter or tag_filter or status_filter:
        st.info("No feed matches these filters.")
    else:
        st.info("No feeds yet. Create one in four stages: connection, script, destination, trigger.")
else:
    for cell, header in zip(st.columns(COLUMNS), HEADERS):
        cell.caption(header)
    for row in rows:
        feed_row(row)
if DELETE_DIALOG in st.session_state:
    delete_dialog(st.session_state[DELETE_DIALOG])
