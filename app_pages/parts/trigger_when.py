"""Stage 4's time-based choices: a Schedule (basic: days and a time of day, or every N
minutes/hours; advanced: a cron expression) and Run once (at a date and time, or manual),
each followed by the live preview. The widgets write into the draft's trigger form (a
dict, see app_pages.view_models.trigger_form); the rules and the preview text come from there."""

from __future__ import annotations

from datetime import date, time, timedelta

import streamlit as st

from app_pages.parts.common import bind, sentence_start
from app_pages.view_models import trigger_form
from app_pages.view_models.trigger_form import BASIC_KINDS, DAY_LABELS, DAYS, ONCE_MODES, SCHEDULE_MODES, UNITS

LAST_DAY = date(2099, 12, 31)  # the last year a cron expression may name
# Characters Streamlit's Markdown would read as formatting (and $ as LaTeX): a cron
# expression such as "0 0 12 * * ?" must show as typed.
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#~|$"})


def plain(text: str) -> str:
    return str(text).translate(_MARKDOWN)


def _key(draft, name: str) -> str:
    return f"{draft.id}:trig:{name}"


def _clock(text: str) -> time | None:
    try:
        return time.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def schedule(draft, form: dict) -> None:
    form["schedule_mode"] = st.radio("Schedule", list(SCHEDULE_MODES), format_func=SCHEDULE_MODES.get,
                                     key=bind(_key(draft, "mode"), form["schedule_mode"]), horizontal=True)
    if form["schedule_mode"] == "advanced":
        _advanced(draft, form)
    else:
        _basic(draft, form)
    show_preview(form)


def _basic(draft, form: dict) -> None:
    form["basic_kind"] = st.radio("Repeat", list(BASIC_KINDS), format_func=BASIC_KINDS.get, horizontal=True,
                                  key=bind(_key(draft, "kind"), form["basic_kind"]))
    if form["basic_kind"] == "weekly":
        form["days"] = list(st.pills("Days of the week", DAYS, selection_mode="multi", format_func=DAY_LABELS.get,
                                     key=bind(_key(draft, "days"), list(form["days"]))) or [])
        clock, zone = st.columns(2)
        chosen = clock.time_input("Time of day", step=60, key=bind(_key(draft, "time"), _clock(form["time"])))
        form["time"] = chosen.strftime("%H:%M") if chosen else ""
        form["timezone"] = _timezone(zone, draft, form)
    else:
        every, unit = st.columns(2)
        # No max_value: the limit depends on the unit, and the preview names it when passed.
        form["every"] = int(every.number_input("Every", min_value=1, step=1,
                                               key=bind(_key(draft, "every"), int(form["every"]))))
        form["unit"] = unit.selectbox("Unit", UNITS, key=bind(_key(draft, "unit"), form["unit"]))
        st.caption("Counted from midnight UTC, so every 15 minutes runs at :00, :15, :30 and :45.")


def _advanced(draft, form: dict) -> None:
    expression, zone = st.columns([3, 1])
    form["expression"] = expression.text_input(
        "Cron expression", key=bind(_key(draft, "expression"), form["expression"]), live=True,
        placeholder=trigger_form.DEFAULT_EXPRESSION,
        help="Quartz, as in Peak: seconds minutes hours day-of-month month day-of-week [year], with ? in one "
             "of the day fields and weekdays 1-7 = SUN-SAT (e.g. 0 0 9 ? * MON-FRI). A 5-field Unix "
             "expression works too (e.g. */15 * * * *).",
    ) or ""
    form["timezone"] = _timezone(zone, draft, form)


def run_once(draft, form: dict) -> None:
    form["once_mode"] = st.radio("Run once", list(ONCE_MODES), format_func=ONCE_MODES.get,
                                 key=bind(_key(draft, "once"), form["once_mode"]))
    if form["once_mode"] == "manual":
        st.caption("No trigger: the feed runs when someone clicks Run now on the Feeds page.")
        return
    day, clock, zone = st.columns(3)
    stored = date.fromisoformat(form["date"])
    # From yesterday (today somewhere on Earth) or the stored date; to the last year cron knows.
    earliest = min(date.today() - timedelta(days=1), stored)
    chosen_day = day.date_input("Date", format="YYYY-MM-DD", min_value=earliest, max_value=LAST_DAY,
                                key=bind(_key(draft, "date"), stored))
    form["date"] = chosen_day.isoformat() if chosen_day else ""
    chosen = clock.time_input("Time", step=60, key=bind(_key(draft, "at-time"), _clock(form["at_time"])))
    form["at_time"] = chosen.strftime("%H:%M") if chosen else ""
    form["timezone"] = _timezone(zone, draft, form)
    show_preview(form)


def _timezone(column, draft, form: dict) -> str:
    # One widget key for every choice that has a zone: switching keeps the zone chosen.
    current = form.get("timezone") or "UTC"
    return column.selectbox("Time zone", trigger_form.timezone_choices(current),
                            key=bind(_key(draft, "timezone"), current))


def show_preview(form: dict) -> None:
    """Valid or not (naming the wrong field), the schedule in words, the next fire times."""
    preview = trigger_form.preview(form)
    with st.container(border=True):
        cron = preview.cron
        if cron is not None and cron.ok:
            st.markdown(f":green[:material/check_circle: Valid {cron.dialect} cron expression]")
        elif cron is not None:
            st.markdown(f":red[:material/cancel: Not valid: {plain(cron.message)}]")
        for field, message in preview.problems:
            if field != "cron expression":  # said just above
                st.markdown(f":red[:material/close: {plain(sentence_start(field))}: {plain(message)}]")
        if preview.description:
            st.markdown(f"**{plain(preview.description)}**")
        if preview.fire_times:
            count = len(preview.fire_times)
            st.markdown(("Next run:" if count == 1 else f"Next {count} runs:") + "\n"
                        + "\n".join(f"- {plain(t)}" for t in preview.fire_times))
