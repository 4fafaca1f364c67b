"""The feed editor's rules: what a draft holds, when each of the four stages is complete, and
saving a draft as a feed. The pages only render a FeedDraft and call these functions.

Stages, as in Peak's REST API connector: Connection, Import Configuration, Destination, Trigger.
A stage's NEXT is enabled when `stage_problems` for it is empty; the user may go back freely.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields

from app_pages.view_models import drafts
from app_pages.view_models import trigger_form
from core.connections import list_connections
from common.errors import NotFound, TributaryError
from core.feeds import DEFAULT_TRIGGER, PEAK_TEMPLATE, FeedSpec, create_feed, edit_feed, get_feed, list_feeds, spec_of
from storage.models import Feed
from core.preview import PreviewRequest
from common.settings import get_settings
from core.state import current_state
from app_pages.view_models.test_sessions import ScriptTestSession
from core import queues
from core.validation import (LOAD_TYPES, NAME_MAX, dependency_problems, feed_name_problems, load_type_problems,
                             queue_problems, raise_if)
from core.watchers import add_watcher, list_watchers, remove_watcher
from core.webhooks import regenerate_token
from storage.destinations import destination_class, destinations_for_warehouse

STAGES = ("Connection", "Import Configuration", "Destination", "Trigger")
PREVIEW_LOG_LINES = 500  # log tail kept with a draft's last test

Problems = list[tuple[str, str]]


@dataclass
class FeedDraft:
    id: str
    owner: str
    mode: str = "new"  # new | edit
    original_name: str | None = None  # the feed being edited
    stage: int = 0
    connection: str | None = None
    # A connection named in the NEW CONNECTION dialog whose parameters are not saved yet.
    pending_connection: dict | None = None
    dependencies: list[str] = field(default_factory=list)
    script: str = PEAK_TEMPLATE
    run_to_completion: bool = False  # off: a test stops once the preview has its records
    load_type: str = "incremental"
    primary_key: list[str] = field(default_factory=list)
    feed_name: str = ""
    destinations: list[str] = field(default_factory=list)
    trigger: dict = field(default_factory=lambda: dict(DEFAULT_TRIGGER))
    # Stage 4's form values (app_pages.view_models.trigger_form); {} until the stage first shows.
    trigger_form: dict = field(default_factory=dict)
    # The watchers the feed should have after SAVE, each {"id" (None until added), "events",
    # "channel", "target", "longer_than_minutes"}. None, like the three fields after it:
    # "as stored", for an edit draft written before stage 4 showed them.
    watchers: list[dict] | None = None
    retries: int | None = None
    retry_backoff_s: int | None = None
    network: bool | None = None
    schema_policy: str | None = None  # None: as stored (or evolve, for a new feed)
    queue: str | None = None  # the workers' queue; None: as stored, "": the default queue
    tags: list[str] = field(default_factory=list)
    timeout_s: int | None = None
    memory_limit_mb: int | None = None
    last_test: dict | None = None
    # Edit mode: the stored feed's script was already in use, so it counts as tested.
    saved_fingerprint: str | None = None
    saved_at: str | None = None

    @property
    def title(self) -> str:
        return self.feed_name or "untitled feed"


# ---------------------------------------------------------------- drafts


def _owner_tag(owner: str) -> str:
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()[:10]


def _from_document(document: dict) -> FeedDraft:
    known = {f.name for f in fields(FeedDraft)}
    return FeedDraft(**{k: v for k, v in document.items() if k in known})


def persist(draft: FeedDraft) -> None:
    draft.saved_at = drafts.save_draft(draft.id, asdict(draft))


def new_draft(owner: str) -> FeedDraft:
    offered = destinations_for_warehouse(get_settings().warehouse)
    defaults = FeedSpec(name="")
    draft = FeedDraft(id=drafts.new_draft_id("new"), owner=owner, destinations=offered[:1],
                      trigger_form=trigger_form.default_form(), watchers=[], retries=defaults.retries,
                      retry_backoff_s=defaults.retry_backoff_s, network=defaults.network)
    persist(draft)
    return draft


def open_draft(draft_id: str, owner: str) -> FeedDraft:
    """A saved draft of this owner (NotFound for another owner's: ids travel in URLs)."""
    draft = _from_document(drafts.load_draft(draft_id))
    if draft.owner != owner:
        raise NotFound(f"draft {draft_id!r} does not exist")
    return draft


def latest_new_draft(owner: str) -> FeedDraft | None:
    found = drafts.list_drafts(owner, kind="new")
    return _from_document(found[0]) if found else None


def other_new_drafts(owner: str, current_id: str) -> list[FeedDraft]:
    return [_from_document(d) for d in drafts.list_drafts(owner, kind="new") if d.get("id") != current_id]


def edit_draft_id(feed_name: str, owner: str) -> str:
    return f"edit-{feed_name}-{_owner_tag(owner)}"


def draft_for_feed(feed_name: str, owner: str) -> FeedDraft:
    """The owner's unsaved changes to a feed if any (saved_at set), else a fresh draft of it."""
    draft_id = edit_draft_id(feed_name, owner)
    if drafts.draft_exists(draft_id):
        return _from_document(drafts.load_draft(draft_id))
    return _fresh_edit_draft(feed_name, owner)


def _fresh_edit_draft(feed_name: str, owner: str) -> FeedDraft:
    draft_id = edit_draft_id(feed_name, owner)
    spec = spec_of(get_feed(feed_name))
    draft = FeedDraft(
        id=draft_id, owner=owner, mode="edit", original_name=spec.name, stage=0, connection=spec.connection,
        dependencies=list(spec.dependencies), script=spec.script, load_type=spec.load_type,
        primary_key=list(spec.primary_key), feed_name=spec.name, destinations=list(spec.destinations),
        trigger=dict(spec.trigger), trigger_form=trigger_form.form_from_trigger(spec.trigger), tags=list(spec.tags),
        timeout_s=spec.timeout_s, memory_limit_mb=spec.memory_limit_mb, watchers=stored_watchers(spec.name),
        retries=spec.retries, retry_backoff_s=spec.retry_backoff_s, network=spec.network,
        schema_policy=spec.schema_policy, queue=spec.queue or "",
    )
    draft.saved_fingerprint = fingerprint(draft)
    return draft


def discard(draft: FeedDraft) -> None:
    drafts.discard_draft(draft.id)


def _what_saving_changes(draft: FeedDraft, baseline: FeedDraft) -> dict:
    changes = edited_fields(draft)
    trigger, problems = form_trigger(draft)
    if problems:  # a half-filled trigger form is a change of its own
        changes["trigger_form"] = dict(draft.trigger_form)
    for name in ("retries", "retry_backoff_s", "network", "schema_policy", "queue"):
        if changes.get(name) is None:
            changes[name] = getattr(baseline, name)
    watchers = draft.watchers if draft.watchers is not None else baseline.watchers
    changes["watchers"] = sorted(
        json.dumps([w.get("id"), sorted(w.get("events") or []), w.get("channel"), w.get("target"),
                    w.get("longer_than_minutes")]) for w in watchers or [])
    changes["pending_connection"] = draft.pending_connection
    return changes


def has_unsaved_changes(draft: FeedDraft) -> bool:
    """Whether SAVE would change the feed: opening a stage, clicking through the stepper or
    testing the stored script changes nothing."""
    if draft.mode != "edit" or not draft.original_name:
        return True
    try:
        baseline = _fresh_edit_draft(draft.original_name, draft.owner)
    except NotFound:
        return True  # the feed is gone: what the user typed is all there is
    return _what_saving_changes(draft, baseline) != _what_saving_changes(baseline, baseline)


def autosave(draft: FeedDraft) -> None:
    """Keep the draft on disk. A feed's edit is kept only while it differs from the feed, so
    the "unsaved changes" note means what it says; a change undone drops the draft."""
    if has_unsaved_changes(draft):
        persist(draft)
    elif draft.saved_at or drafts.draft_exists(draft.id):
        discard(draft)
        draft.saved_at = None


# ---------------------------------------------------------------- testing


def fingerprint(draft: FeedDraft) -> str:
    """What a test result depends on: a test of another script, dependencies or connection
    says nothing about this one."""
    material = json.dumps([draft.script, sorted(draft.dependencies), draft.connection])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def request_for_test(draft: FeedDraft) -> PreviewRequest:
    # An existing feed is tested from its current state, as its next run would start.
    metadata = current_state(draft.original_name) if draft.mode == "edit" and draft.original_name else {}
    return PreviewRequest(
        script=draft.script, connection=draft.connection, dependencies=list(draft.dependencies),
        metadata=metadata, run_to_completion=draft.run_to_completion, timeout_s=draft.timeout_s,
        memory_limit_mb=draft.memory_limit_mb,
        feed=draft.original_name if draft.mode == "edit" and draft.original_name else None,
    )


def summarise_test(session: ScriptTestSession, fingerprint_: str = "") -> dict:
    """A finished test as a draft keeps it (so the preview survives a reload), and as the
    pages show it."""
    logs = session.lines()[-PREVIEW_LOG_LINES:]
    result = session.result
    summary = {"session_id": session.id, "fingerprint": fingerprint_, "logs": logs}
    if result is None:
        return {**summary, "ok": False, "error": session.failure or "the test did not run", "error_line": None,
                "records": [], "count": 0, "metadata": None, "duration_s": round(session.elapsed_s(), 3)}
    limit = session.record_limit
    return {**summary, "ok": result.ok, "error": result.error, "error_line": result.error_line,
            "records": result.records, "count": result.count, "metadata": result.metadata,
            "duration_s": result.duration_s, "status": result.status,
            "requests": result.requests, "request_counts": result.request_counts, "schema": result.schema,
            # Without Run to completion the script is stopped once the preview is full.
            "stopped_at": limit if result.ok and limit and result.count >= limit else None}


def record_finished_test(draft: FeedDraft, session: ScriptTestSession | None) -> bool:
    """Keep a test that finished since the last look in the draft; True when it did."""
    if session is None or session.running or not session.started_at:
        return False
    if draft.last_test and draft.last_test.get("session_id") == session.id:
        return False
    draft.last_test = summarise_test(session, session.fingerprint)
    return True


def last_test_is_of_another_version(draft: FeedDraft) -> bool:
    """Whether the script, its dependencies or the connection changed since the last test."""
    return bool(draft.last_test) and draft.last_test.get("fingerprint") != fingerprint(draft)


def tested_version_is_current(draft: FeedDraft) -> bool:
    current = fingerprint(draft)
    if draft.saved_fingerprint == current:
        return True
    return bool(draft.last_test and draft.last_test.get("ok") and draft.last_test.get("fingerprint") == current)


def preview_columns(draft: FeedDraft) -> list[str]:
    """The preview records' top-level fields in first-seen order: the primary key choices."""
    columns: list[str] = []
    for record in (draft.last_test or {}).get("records") or []:
        for key in record:
            if key not in columns:
                columns.append(key)
    return columns


def error_line_text(script: str, line: int | None) -> str | None:
    if not line:
        return None
    lines = script.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else None


# ---------------------------------------------------------------- rules per stage

FEED_NAME_RULES = (
    # (what the user sees, the start of the message core.validation gives when it is broken)
    ("Only letters, digits and underscores", "may contain only letters, digits and underscores"),
    ("Starts with a letter", "must start with a letter"),
    ("Does not end with an underscore", "must not end with an underscore"),
    (f"At most {NAME_MAX} characters", "must be at most"),
)
NAME_TAKEN = "is already used by another feed"


@dataclass
class RuleCheck:
    label: str
    ok: bool | None  # None: not checked yet (nothing typed)
    message: str = ""


def broken_rule_text(check: RuleCheck) -> str:
    """A broken rule said once: the rule itself ("Starts with a letter"), with the length
    where it matters; a rule the checklist does not know yet in its own words."""
    if check.label == check.message:
        return f"Feed name {check.message}"
    got = re.search(r"\(got \d+\)", check.message)
    return f"{check.label} {got.group(0)}" if got else check.label


def feed_name_checks(draft: FeedDraft, taken: set[str] | None = None) -> list[RuleCheck]:
    """Every feed-name rule with whether the current name keeps it, for a live checklist."""
    name = draft.feed_name
    if not name:
        return [RuleCheck(label, None) for label, _ in FEED_NAME_RULES] + [RuleCheck("Not used by another feed", None)]
    messages = [message for _, message in feed_name_problems(name)]
    checks = []
    for label, prefix in FEED_NAME_RULES:
        broken = [m for m in messages if m.startswith(prefix)]
        checks.append(RuleCheck(label, not broken, broken[0] if broken else ""))
    # A rule added to core.validation later still shows, with its own words.
    known = tuple(prefix for _, prefix in FEED_NAME_RULES)
    checks += [RuleCheck(m, False, m) for m in messages if not m.startswith(known)]
    if draft.mode == "new":
        taken = taken if taken is not None else {f.name for f in list_feeds()}
        checks.append(RuleCheck("Not used by another feed", name not in taken, NAME_TAKEN if name in taken else ""))
    return checks


def _effective_primary_key(draft: FeedDraft) -> list[str]:
    # The key is kept while the user tries other load types, but only Upsert uses it.
    return list(draft.primary_key) if draft.load_type == "upsert" else []


def _connection_problems(draft: FeedDraft) -> Problems:
    if draft.pending_connection:
        name = draft.pending_connection.get("name")
        return [("connection", f"save the parameters of the new connection {name} first")]
    if draft.connection and draft.connection not in {c.name for c in list_connections()}:
        return [("connection", f"{draft.connection!r} does not exist any more; choose another")]
    return []


def _import_problems(draft: FeedDraft) -> Problems:
    problems = dependency_problems(draft.dependencies)
    if not draft.script.strip():
        problems.append(("script", "is empty"))
    elif not tested_version_is_current(draft):
        problems.append(("script", "click Test and get a successful test of this version of the script"))
    if draft.mode == "new":
        problems += feed_name_problems(draft.feed_name)
        if draft.feed_name and draft.feed_name in {f.name for f in list_feeds()}:
            problems.append(("feed name", NAME_TAKEN))
    key = _effective_primary_key(draft)
    problems += load_type_problems(draft.load_type, key)
    columns = preview_columns(draft)
    if columns and draft.load_type == "upsert":
        problems += [("primary key", f"{k!r} is not a field of the preview's records") for k in key if k not in columns]
    return problems


@dataclass
class DestinationChoice:
    name: str
    title: str
    target: str  # what will be created, in words
    supported: bool
    reason: str = ""


def destination_choices(draft: FeedDraft) -> list[DestinationChoice]:
    """The destinations the configured warehouse offers, each with what it will create."""
    table = draft.feed_name or "<feed name>"
    choices = []
    for name in destinations_for_warehouse(get_settings().warehouse):
        cls = destination_class(name)
        supported = draft.load_type in cls.capabilities.load_types
        load_type = LOAD_TYPES.get(draft.load_type, draft.load_type)
        reason = "" if supported else f"does not support the load type {load_type}"
        choices.append(DestinationChoice(name, cls.title, cls().describe_target(table), supported, reason))
    return choices


def shown_queue(draft: FeedDraft) -> str:
    """The queue the Destination stage shows: the draft's, else the stored feed's."""
    if draft.queue is None:
        draft.queue = (spec_of(get_feed(draft.original_name)).queue or "") if draft.mode == "edit" else ""
    return draft.queue


def _queue_problems(draft: FeedDraft) -> Problems:
    queue = (draft.queue or "").strip() or None
    return queue_problems(queue) or queues.pin_problems(queue, draft.destinations)


def _destination_problems(draft: FeedDraft) -> Problems:
    if not draft.destinations:
        return [("destinations", "choose at least one destination")] + _queue_problems(draft)
    by_name = {c.name: c for c in destination_choices(draft)}
    problems = []
    for name in draft.destinations:
        choice = by_name.get(name)
        if choice is None:
            problems.append(("destinations", f"{name!r} is not offered by this warehouse"))
        elif not choice.supported:
            problems.append(("destinations", f"{choice.title} {choice.reason}"))
    return problems + _queue_problems(draft)


def stored_watchers(feed_name: str) -> list[dict]:
    return [{"id": w.id, "events": list(w.events), "channel": w.channel, "target": w.target,
             "longer_than_minutes": w.longer_than_minutes} for w in list_watchers(feed_name)]


def fill_trigger_stage(draft: FeedDraft) -> None:
    """Give stage 4 its values where the draft has none yet (a draft from before the stage
    had them): the stored feed's for an edit, the defaults for a new feed."""
    if not draft.trigger_form:
        draft.trigger_form = trigger_form.form_from_trigger(draft.trigger)
    else:  # a form saved before a field was added gets that field's default
        draft.trigger_form = {**trigger_form.default_form(), **draft.trigger_form}
    if None not in (draft.watchers, draft.retries, draft.retry_backoff_s, draft.network):
        return
    stored = spec_of(get_feed(draft.original_name)) if draft.mode == "edit" else FeedSpec(name="")
    if draft.watchers is None:
        draft.watchers = stored_watchers(draft.original_name) if draft.mode == "edit" else []
    draft.retries = stored.retries if draft.retries is None else draft.retries
    draft.retry_backoff_s = stored.retry_backoff_s if draft.retry_backoff_s is None else draft.retry_backoff_s
    draft.network = stored.network if draft.network is None else draft.network


def form_trigger(draft: FeedDraft) -> tuple[dict | None, Problems]:
    """The trigger stage 4's form makes, with its problems."""
    return trigger_form.trigger_from_form(draft.trigger_form or trigger_form.form_from_trigger(draft.trigger))


def _trigger_problems(draft: FeedDraft) -> Problems:
    _, problems = form_trigger(draft)
    problems += trigger_form.watchers_problems(draft.watchers or [])
    if draft.retries is not None and draft.retry_backoff_s is not None:
        problems += trigger_form.retry_problems(draft.retries, draft.retry_backoff_s)
    return problems


_STAGE_RULES = (_connection_problems, _import_problems, _destination_problems, _trigger_problems)


def stage_problems(draft: FeedDraft, stage: int) -> Problems:
    return _STAGE_RULES[stage](draft)


def reachable_stage(draft: FeedDraft) -> int:
    """The furthest stage the user may open: every stage before it is complete."""
    for stage in range(len(STAGES) - 1):
        if stage_problems(draft, stage):
            return stage
    return len(STAGES) - 1


# ---------------------------------------------------------------- saving


def edited_fields(draft: FeedDraft) -> dict:
    """What the four stages set. Everything else a feed has (limits, a webhook token...) is
    left as it is stored: the editor must not reset what it does not show."""
    trigger, _ = form_trigger(draft)
    changes = {
        "script": draft.script, "connection": draft.connection, "dependencies": list(draft.dependencies),
        "load_type": draft.load_type, "primary_key": _effective_primary_key(draft),
        "destinations": list(draft.destinations), "trigger": dict(trigger or draft.trigger), "tags": list(draft.tags),
    }
    for name in ("retries", "retry_backoff_s", "network", "schema_policy"):
        if getattr(draft, name) is not None:
            changes[name] = getattr(draft, name)
    if draft.queue is not None:
        changes["queue"] = draft.queue.strip() or None
    return changes


def save_feed(draft: FeedDraft) -> Feed:
    """Create or update the feed with its trigger (the services validate everything again),
    then bring its watchers in line with the draft (add_watcher needs the feed to exist),
    give a new webhook feed its token, and drop the draft.

    Nothing is written while stage 4 has a problem. Should a step after the feed's own save
    fail, the draft is kept, turned into an edit of the feed it created, so that SAVE again
    finishes the job instead of tripping over the name it just took."""
    raise_if(_trigger_problems(draft))
    changes = edited_fields(draft)
    if draft.mode == "edit":
        feed = edit_feed(draft.original_name, **changes)
    else:
        feed = create_feed(FeedSpec(name=draft.feed_name, **changes))
    try:
        _sync_watchers(draft, feed.name)
        if changes["trigger"].get("type") == "webhook" and not feed.webhook_token_hash:
            trigger_form.hold_new_token(draft.owner, feed.name, regenerate_token(feed.name))
    except Exception as exc:
        if draft.mode == "new":
            draft.mode, draft.original_name = "edit", feed.name
            draft.saved_fingerprint = fingerprint(draft)
        persist(draft)
        if isinstance(exc, TributaryError):
            raise
        raise TributaryError(f"feed {feed.name} was saved, but not all of its watchers and webhook token ({exc}); "
                             "Save again to finish") from exc
    discard(draft)
    return feed


def _sync_watchers(draft: FeedDraft, feed_name: str) -> None:
    if draft.watchers is None:
        return  # never shown: the stored ones stay as they are
    wanted = {w["id"] for w in draft.watchers if w.get("id")}
    for watcher in list_watchers(feed_name):
        if watcher.id not in wanted:
            remove_watcher(watcher.id)
    for watcher in draft.watchers:
        if not watcher.get("id"):
            added = add_watcher(feed_name, watcher["events"], watcher["channel"], watcher["target"],
                                watcher.get("longer_than_minutes"))
            watcher["id"] = added.id  # a second SAVE after a failure must not add it twice
