"""Stage 4's trigger form, without Streamlit: the values the user enters, the trigger they
make (core.triggers' JSON), what is wrong with them, and the live preview (whether a cron
expression is valid, what a schedule means in words, its next fire times).

The form is one flat dict kept in the draft, so that switching between Schedule, Run once
and Webhook (or basic and advanced) loses nothing that was typed:

    type            schedule | once | webhook
    schedule_mode   basic | advanced
    basic_kind      weekly | interval
    days, time      weekly: ["mon", ...], "HH:MM"
    every, unit     interval: 15, "minutes" | "hours"
    expression      advanced: Quartz (6 or 7 fields) or Unix (5 fields) cron
    timezone        the zone of weekly, cron and run-once times (IANA name, default UTC)
    once_mode       at | manual   (Run once at a date and time, or by hand only)
    date, at_time   run once: "YYYY-MM-DD", "HH:MM"
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import available_timezones

from core import schedules, triggers
from core.services.retries import retry_delay_s
from core.schedules.basic import DAYS, INTERVAL_LIMITS
from core.watchers import CHANNELS, EVENTS, event_title, watcher_problems

Problems = list[tuple[str, str]]

TYPES = {"schedule": "Schedule", "once": "Run once", "webhook": "Webhook"}
SCHEDULE_MODES = {"basic": "Basic", "advanced": "Advanced (cron)"}
BASIC_KINDS = {"weekly": "On days of the week", "interval": "Every N minutes or hours"}
ONCE_MODES = {"at": "At a date and time", "manual": "Manual: the feed runs when someone clicks Run now"}
DAY_LABELS = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}
UNITS = tuple(INTERVAL_LIMITS)
PREVIEW_COUNT = 5
DEFAULT_EXPRESSION = "0 0 9 ? * MON-FRI"  # Peak's own example shape: weekdays at 09:00
RETRIES_MAX = 10
BACKOFF_MAX_S = 86_400

# The spec keys of core.schedules, as the form labels them.
_FIELD_LABELS = {"days": "days of the week", "time": "time of day", "timezone": "time zone", "every": "every",
                 "unit": "unit", "at": "date and time", "expression": "cron expression", "kind": "schedule"}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- form <-> trigger


def default_form(now: datetime | None = None) -> dict:
    """A new feed's form: manual (Peak's default), with sensible values ready in every
    other choice."""
    tomorrow = ((now or _utcnow()) + timedelta(days=1)).date()
    return {
        "type": "once", "schedule_mode": "basic", "basic_kind": "weekly",
        "days": list(DAYS[:5]), "time": "09:00", "every": 15, "unit": "minutes",
        "expression": DEFAULT_EXPRESSION, "timezone": "UTC",
        "once_mode": "manual", "date": tomorrow.isoformat(), "at_time": "09:00",
    }


def form_from_trigger(trigger: dict | None, now: datetime | None = None) -> dict:
    """The form showing a stored trigger (an edited feed, or a draft from before the form)."""
    form = default_form(now)
    trigger = trigger or {"type": "manual"}
    kind = trigger.get("type", "manual")
    spec = trigger.get("schedule") if isinstance(trigger.get("schedule"), dict) else {}
    if kind == "webhook":
        form["type"] = "webhook"
    elif kind == "schedule":
        form["type"] = "schedule"
        try:
            spec = schedules.normalize(spec)
        except schedules.ScheduleError:
            pass  # shown as it is, with its problem named
        if spec.get("kind") == "cron":
            form.update(schedule_mode="advanced", expression=spec.get("expression") or "")
        elif spec.get("kind") in ("weekly", "interval"):
            form.update(schedule_mode="basic", basic_kind=spec["kind"])
            for key in ("days", "time", "every", "unit"):
                if spec.get(key) is not None:
                    form[key] = spec[key]
        form["timezone"] = spec.get("timezone") or "UTC"
    elif kind == "once":
        form.update(type="once", once_mode="at")
        _fill_once(form, spec)
    return form


def _fill_once(form: dict, spec: dict) -> None:
    zone = spec.get("timezone") or "UTC"
    try:
        at = schedules.basic.parse_at(spec.get("at"), zone).astimezone(schedules.resolve_timezone(zone))
    except schedules.ScheduleError:
        return
    form.update(timezone=zone, date=at.date().isoformat(), at_time=f"{at:%H:%M}")


def trigger_from_form(form: dict, now: datetime | None = None) -> tuple[dict | None, Problems]:
    """The trigger the form describes, or None with what is wrong (fields named as the form
    labels them). A schedule that can never fire again counts as wrong: it would save a feed
    that silently never runs."""
    now = now or _utcnow()
    kind = form.get("type")
    if kind == "webhook":
        return {"type": "webhook"}, []
    if kind == "once":
        if form.get("once_mode") == "manual":
            return {"type": "manual"}, []
        return _once_trigger(form, now)
    if kind == "schedule":
        return _schedule_trigger(form, now)
    return None, [("trigger", f"choose one of {', '.join(TYPES.values())}")]


def schedule_spec(form: dict) -> dict:
    """The core.schedules spec of the form's Schedule choice."""
    if form.get("schedule_mode") == "advanced":
        return {"kind": "cron", "expression": (form.get("expression") or "").strip(),
                "timezone": form.get("timezone") or "UTC"}
    if form.get("basic_kind") == "interval":
        # Intervals count from a fixed UTC instant (see core.schedules.basic): no time zone.
        return {"kind": "interval", "every": form.get("every"), "unit": form.get("unit")}
    chosen = set(form.get("days") or [])
    return {"kind": "weekly", "days": [d for d in DAYS if d in chosen] or list(chosen), "time": form.get("time"),
            "timezone": form.get("timezone") or "UTC"}


def _schedule_trigger(form: dict, now: datetime) -> tuple[dict | None, Problems]:
    spec = schedule_spec(form)
    if spec["kind"] == "cron":
        check = check_cron(spec["expression"])
        problems = [] if check.ok else [("cron expression", check.message)]
        problems += _labelled(p for p in schedules.validate(spec) if p[0] == "timezone")
    else:
        problems = _labelled(schedules.validate(spec))
    if problems:
        return None, problems
    if not schedules.next_fire_times(spec, 1, start=now):
        return None, [("schedule", "never fires from now on (its years have passed): change it")]
    trigger = {"type": "schedule", "schedule": spec}
    return trigger, _labelled(triggers.trigger_problems(trigger))


def once_moment(form: dict) -> datetime | None:
    """The form's run-once date and time as an aware datetime in its zone (None if unreadable)."""
    try:
        day = date.fromisoformat(str(form.get("date")))
        hour, minute = schedules.basic.parse_time(form.get("at_time"))
        zone = schedules.resolve_timezone(form.get("timezone") or "UTC")
    except (ValueError, schedules.ScheduleError):
        return None
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def _once_trigger(form: dict, now: datetime) -> tuple[dict | None, Problems]:
    zone = form.get("timezone") or "UTC"
    try:
        schedules.resolve_timezone(zone)
    except schedules.ScheduleError as error:
        return None, [("time zone", error.message)]
    at = once_moment(form)
    if at is None:
        return None, [("date and time", "choose a date and a time of day")]
    if at <= now:
        return None, [("date and time", f"{at:%Y-%m-%d %H:%M} ({zone}) has passed: choose a later time, "
                                        "or Manual")]
    trigger = {"type": "once", "schedule": {"kind": "once", "at": at.isoformat(), "timezone": zone}}
    return trigger, _labelled(triggers.trigger_problems(trigger))


def _labelled(problems) -> Problems:
    return [(_FIELD_LABELS.get(f, f), message) for f, message in problems]


# ---------------------------------------------------------------- the live preview


@dataclass
class CronCheck:
    ok: bool
    field: str | None = None  # the cron field at fault, as ScheduleError labels it
    message: str = ""
    dialect: str = ""  # "Quartz" or "Unix"


def check_cron(expression: str) -> CronCheck:
    """Whether an expression is valid, and if not which of its fields is wrong."""
    try:
        parsed = schedules.parse_quartz(expression)
    except schedules.ScheduleError as error:
        if error.field == "expression":  # the whole expression: empty, or the wrong field count
            subject = "the expression " if error.message.startswith("is ") else ""
            return CronCheck(False, None, subject + error.message)
        return CronCheck(False, error.label, f"the {error.label} field: {error.message}")
    return CronCheck(True, dialect="Unix" if parsed.unix else "Quartz")


@dataclass
class Preview:
    """What the stage shows under the form while the user types."""

    problems: Problems = field(default_factory=list)
    description: str = ""
    fire_times: list[str] = field(default_factory=list)  # the next PREVIEW_COUNT, as people read them
    cron: CronCheck | None = None  # advanced schedules only

    @property
    def ok(self) -> bool:
        return not self.problems


def preview(form: dict, now: datetime | None = None) -> Preview:
    now = now or _utcnow()
    trigger, problems = trigger_from_form(form, now)
    cron = check_cron(form.get("expression") or "") if _is_cron(form) else None
    if trigger is None:
        return Preview(problems, cron=cron)
    kind = trigger["type"]
    if kind == "manual":
        return Preview(description="Manual: no trigger. The feed runs when someone clicks Run now on the Feeds page.")
    if kind == "webhook":
        return Preview(description="Webhook: the feed runs when a caller POSTs to its URL with its token.")
    spec = trigger["schedule"]
    zone = spec.get("timezone") or "UTC"
    times = schedules.next_fire_times(spec, PREVIEW_COUNT, start=now)
    return Preview(description=schedules.describe_spec(spec), cron=cron,
                   fire_times=[format_fire_time(t, zone) for t in times])


def _is_cron(form: dict) -> bool:
    return form.get("type") == "schedule" and form.get("schedule_mode") == "advanced"


def format_fire_time(moment: datetime, zone: str = "UTC") -> str:
    """'Mon 2026-03-30 09:30 Europe/London (08:30 UTC)': the wall time where the schedule
    lives, and UTC beside it when that differs, since logs and the Runs page speak UTC."""
    local = moment.astimezone(schedules.resolve_timezone(zone))
    text = f"{local:%a %Y-%m-%d %H:%M} {zone}"
    if local.utcoffset() != timedelta(0) or zone.upper() != "UTC":
        text += f" ({moment.astimezone(timezone.utc):%H:%M} UTC)"
    return text


def timezone_choices(current: str | None = None) -> list[str]:
    """UTC first, then every IANA zone by name (plus the current one, should it be odd)."""
    zones = sorted(z for z in available_timezones() if z != "UTC" and not z.startswith(("Etc/", "SystemV/")))
    extra = [current] if current and current != "UTC" and current not in zones else []
    return ["UTC", *extra, *zones]


# ---------------------------------------------------------------- webhook


def curl_example(url: str, token: str | None = None) -> str:
    from core.webhooks import TOKEN_HEADER

    secret = token or "$TRIBUTARY_TOKEN"
    return (f'curl -X POST "{url}" \\\n'
            f'  -H "{TOKEN_HEADER}: {secret}" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            "  -d '{}'")


# A token is shown once, on the page the user lands on after SAVE. Between the save and that
# page it waits here, in this process's memory only (never in a draft file or the store).
_new_tokens: dict[tuple[str, str], str] = {}
_tokens_lock = threading.Lock()


def hold_new_token(owner: str, feed_name: str, token: str) -> None:
    with _tokens_lock:
        _new_tokens[(owner, feed_name)] = token


def take_new_tokens(owner: str) -> list[tuple[str, str]]:
    """The (feed, token) pairs generated for this owner since the last look, once."""
    with _tokens_lock:
        mine = [key for key in _new_tokens if key[0] == owner]
        return [(feed, _new_tokens.pop((who, feed))) for who, feed in mine]


# ---------------------------------------------------------------- watchers


def new_watcher(events: list[str], channel: str, target: str, longer_than_minutes: int | None) -> dict:
    """A watcher as the draft keeps it until SAVE adds it (id None: not in the store yet)."""
    events = [e for e in EVENTS if e in (events or [])]
    return {"id": None, "events": events, "channel": channel, "target": (target or "").strip(),
            "longer_than_minutes": longer_than_minutes if "long_run" in events else None}


def watcher_field_problems(watcher: dict) -> dict[str, list[str]]:
    """core.watchers' rules, by the form field they belong to."""
    by_field: dict[str, list[str]] = {}
    for name, message in watcher_problems(watcher["events"], watcher["channel"], watcher["target"],
                                          watcher.get("longer_than_minutes")):
        by_field.setdefault(name, []).append(message)
    return by_field


def watchers_problems(watchers: list[dict]) -> Problems:
    problems = []
    for number, watcher in enumerate(watchers, 1):
        for name, messages in watcher_field_problems(watcher).items():
            problems += [(f"watcher {number} {name}", message) for message in messages]
    return problems


def describe_watcher(watcher: dict) -> str:
    """'Email ops@example.com when: run failed, run took longer than 30 minutes'."""
    events = ", ".join(event_title(e, watcher.get("longer_than_minutes")) for e in watcher["events"])
    channel = "Email" if watcher["channel"] == "email" else "Webhook"
    return f"{channel} {watcher['target']} when: {events}"


def target_label(channel: str) -> str:
    """What the target field asks for on this channel."""
    return {"email": "Email address", "webhook": "Webhook URL"}.get(channel, CHANNELS.get(channel, "Target"))


# ---------------------------------------------------------------- retries


def retry_problems(retries: int, backoff_s: int) -> Problems:
    problems = []
    if not 0 <= retries <= RETRIES_MAX:
        problems.append(("retries", f"must be between 0 and {RETRIES_MAX}"))
    if not 1 <= backoff_s <= BACKOFF_MAX_S:
        problems.append(("first retry delay", "must be between 1 second and 1 day (86400 s)"))
    return problems


def retry_plan(retries: int, backoff_s: int) -> str:
    """The waits a failing feed goes through, in words."""
    if retries <= 0:
        return "A failed run is not tried again."
    waits = [_span(retry_delay_s(backoff_s, attempt)) for attempt in range(1, retries + 1)]
    times = "once" if retries == 1 else f"up to {retries} times"
    listed = waits[0] if len(waits) == 1 else ", ".join(waits[:-1]) + " and " + waits[-1]
    doubling = " (each wait twice the one before)" if retries > 1 else ""
    return f"A failed run is tried again {times}, waiting {listed}{doubling}."


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"
