"""Feed use cases: create, list, get, edit, delete, and export/import as YAML.

YAML, the scheduler and the trigger rules are imported where they are used: a run started
from the command line reads its feed through here and needs none of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from sqlmodel import func, select

from core import queues, schedule_slots
from common.errors import Conflict, NotFound, ValidationError
from storage.models import ActiveRun, Connection, Feed, utcnow
from common.settings import get_settings
from core.validation import (
    LOAD_TYPES,
    dependency_problems,
    feed_name_problems,
    limit_problems,
    load_type_problems,
    queue_problems,
    schema_policy_problems,
    raise_if,
)
from storage.db import session_scope
from storage.lookups import feed_by_name, find_feed
from storage.destinations import destination_class, destinations_for_warehouse

DEFAULT_TRIGGER = {"type": "manual"}

PEAK_TEMPLATE = '''# Fetch data from a REST API and write it to the output stream.
#
# outputStream.write(record)  writes one record (a dict) to the feed.
# metadata                    the state saved by the last successful run ({} at first).
# metadata.save(obj)          keeps a state (a dict) for the next run, e.g. a cursor.
import requests
from lib import outputStream, metadata

'''


@dataclass
class FeedSpec:
    name: str
    script: str = PEAK_TEMPLATE
    connection: str | None = None
    dependencies: list[str] = field(default_factory=list)
    load_type: str = "incremental"
    primary_key: list[str] = field(default_factory=list)
    destinations: list[str] = field(default_factory=list)
    trigger: dict = field(default_factory=lambda: dict(DEFAULT_TRIGGER))
    tags: list[str] = field(default_factory=list)
    timeout_s: int | None = None
    memory_limit_mb: int | None = None
    retries: int = 0
    retry_backoff_s: int = 60
    max_rejected_ratio: float = 0.0
    network: bool = True
    schema_policy: str = "evolve"  # evolve | freeze | discard_new_columns (core/validation.py)
    queue: str | None = None  # the workers' queue its runs go to (core/queues.py); None: the default


def _destination_problems(destinations: list[str], load_type: str) -> list[tuple[str, str]]:
    offered = destinations_for_warehouse(get_settings().warehouse)
    problems = []
    if not destinations:
        problems.append(("destinations", "choose at least one destination"))
    for name in destinations:
        if name not in offered:
            problems.append(("destinations", f"{name!r} is not offered by this warehouse (choose from {', '.join(offered)})"))
        elif load_type in LOAD_TYPES and load_type not in destination_class(name).capabilities.load_types:
            problems.append(("destinations", f"{name} does not support the load type {LOAD_TYPES[load_type]}"))
    return problems


# What each field holds, and its name in messages. A YAML file or a JSON client can send any
# type: checked before any rule, so that a wrong one gets a message, not a traceback.
_TEXT, _TEXTS, _WHOLE, _NUMBER, _FLAG, _MAPPING = "text", "a list of text values", "a whole number", "a number", \
    "true or false", "a mapping"
_FIELD_TYPES = {
    "name": ("feed name", _TEXT, False), "script": ("script", _TEXT, False),
    "connection": ("connection", _TEXT, True), "dependencies": ("dependencies", _TEXTS, False),
    "load_type": ("load type", _TEXT, False), "primary_key": ("primary key", _TEXTS, False),
    "destinations": ("destinations", _TEXTS, False), "trigger": ("trigger", _MAPPING, False),
    "tags": ("tags", _TEXTS, False), "timeout_s": ("timeout", _WHOLE, True),
    "memory_limit_mb": ("memory limit", _WHOLE, True), "retries": ("retries", _WHOLE, False),
    "retry_backoff_s": ("retry backoff", _WHOLE, False), "max_rejected_ratio": ("failed row threshold", _NUMBER, False),
    "network": ("network", _FLAG, False), "schema_policy": ("schema policy", _TEXT, False),
    "queue": ("queue", _TEXT, True),
}


def _is(value, kind: str) -> bool:
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == _TEXTS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind in (_WHOLE, _NUMBER):
        return not isinstance(value, bool) and isinstance(value, int if kind == _WHOLE else (int, float))
    return isinstance(value, bool if kind == _FLAG else dict)


def _described(value) -> str:
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) <= 40 else "a string"
    return "nothing" if value is None else f"{type(value).__name__} ({value!r})"[:60]


def type_problems(spec: FeedSpec) -> list[tuple[str, str]]:
    """A message for each field whose value has the wrong type (see _FIELD_TYPES)."""
    problems = []
    for name, (label, kind, optional) in _FIELD_TYPES.items():
        value = getattr(spec, name)
        if (value is None and optional) or _is(value, kind):
            continue
        if name == "dependencies":
            kind = "a list of package specifiers, e.g. [requests, pandas>=2]"
        if not isinstance(value, list) or _FIELD_TYPES[name][1] != _TEXTS:
            problems.append((label, f"must be {kind}, not {_described(value)}"))
            continue
        number, item = next((n, v) for n, v in enumerate(value, 1) if not isinstance(v, str))
        problems.append((label, f"must be {kind}: item {number} is {_described(item)}"))
    return problems


def validate_spec(spec: FeedSpec) -> None:
    raise_if(type_problems(spec))
    spec.queue = spec.queue.strip() or None if spec.queue else None  # blank: the default queue
    problems = feed_name_problems(spec.name)
    if not spec.script.strip():
        problems.append(("script", "is empty"))
    problems += dependency_problems(spec.dependencies)
    problems += load_type_problems(spec.load_type, spec.primary_key)
    problems += schema_policy_problems(spec.schema_policy)
    problems += _destination_problems(spec.destinations, spec.load_type)
    problems += queue_problems(spec.queue) or queues.pin_problems(spec.queue, spec.destinations)
    problems += limit_problems(spec.timeout_s, spec.memory_limit_mb)
    if not 0 <= spec.retries <= 10:
        problems.append(("retries", "must be between 0 and 10"))
    if not 1 <= spec.retry_backoff_s <= 86400:
        problems.append(("retry backoff", "must be between 1 second and 1 day"))
    if not 0.0 <= spec.max_rejected_ratio <= 1.0:
        problems.append(("failed row threshold", "must be a share between 0 and 1 (e.g. 0.05 for 5%)"))
    from core.triggers import trigger_problems

    problems += trigger_problems(spec.trigger)
    raise_if(problems)


def _feed_named_alike(session, name: str) -> Feed | None:
    """The feed whose name equals `name` ignoring case: table names are case-insensitive in
    most warehouses, so 'Orders' and 'orders' would load into one table."""
    return session.exec(select(Feed).where(func.lower(Feed.name) == name.lower())).first()


def _resolve_connection(session, name: str | None) -> int | None:
    if not name:
        return None
    conn = session.exec(select(Connection).where(Connection.name == name)).first()
    if conn is None:
        raise ValidationError.single("connection", f"{name!r} does not exist")
    return conn.id


def _with_defaults(spec: FeedSpec) -> FeedSpec:
    raise_if(type_problems(spec))
    if not spec.destinations:
        spec.destinations = destinations_for_warehouse(get_settings().warehouse)[:1]
    spec.dependencies = [d.strip() for d in spec.dependencies if d.strip()]
    return spec


def _apply(feed: Feed, spec: FeedSpec, connection_id: int | None) -> None:
    feed.script = spec.script
    feed.connection_id = connection_id
    feed.dependencies = list(spec.dependencies)
    feed.load_type = spec.load_type
    feed.primary_key = list(spec.primary_key)
    feed.destinations = list(spec.destinations)
    feed.trigger = dict(spec.trigger or DEFAULT_TRIGGER)
    feed.tags = list(spec.tags)
    feed.timeout_s = spec.timeout_s
    feed.memory_limit_mb = spec.memory_limit_mb
    feed.retries = spec.retries
    feed.retry_backoff_s = spec.retry_backoff_s
    feed.max_rejected_ratio = spec.max_rejected_ratio
    feed.network = spec.network
    feed.schema_policy = spec.schema_policy
    feed.queue = spec.queue
    feed.updated_at = utcnow()


def create_feed(spec: FeedSpec) -> Feed:
    spec = _with_defaults(spec)
    validate_spec(spec)
    with session_scope() as session:
        taken = _feed_named_alike(session, spec.name)
        if taken is not None:
            alike = "" if taken.name == spec.name else f" (as {taken.name!r}: names differing only in case name one table)"
            raise Conflict(f"feed name: {spec.name!r} is already taken{alike}")
        feed = Feed(name=spec.name, script=spec.script)
        _apply(feed, spec, _resolve_connection(session, spec.connection))
        session.add(feed)
        session.flush()
    _sync_schedule(feed.name)
    return feed


def edit_feed(name: str, /, **changes) -> Feed:
    """Change some fields of a feed; the rest keep their stored values. Renaming is refused
    because the name is the destination table's name."""
    current = spec_of(get_feed(name))
    unknown = set(changes) - {f.name for f in fields(FeedSpec)}
    if unknown:
        raise ValidationError.single("feed", f"unknown field(s): {', '.join(sorted(unknown))}")
    if changes.get("name", name) != name:
        raise ValidationError.single("feed name", "cannot be changed: it names the destination table")
    spec = FeedSpec(**{**asdict(current), **changes})
    validate_spec(spec)
    with session_scope() as session:
        feed = feed_by_name(session, name)
        _apply(feed, spec, _resolve_connection(session, spec.connection))
        session.add(feed)
    _sync_schedule(name)
    return feed


def set_paused(name: str, paused: bool) -> Feed:
    with session_scope() as session:
        feed = feed_by_name(session, name)
        feed.paused = paused
        feed.updated_at = utcnow()
        session.add(feed)
    _sync_schedule(name)
    return feed


def delete_feed(name: str, drop_data: bool = False) -> None:
    """Delete a feed and its state history. Its warehouse tables are kept unless asked."""
    with session_scope() as session:
        feed = feed_by_name(session, name)
        if session.get(ActiveRun, feed.id):
            raise Conflict(f"feed {name!r} has a run in progress; cancel it first")
        destinations = list(feed.destinations)
        # Its state history, schedule slot and watchers go with it (ON DELETE CASCADE).
        session.delete(feed)
    if drop_data:
        for destination in destinations:
            destination_class(destination)().drop(name)


def get_feed(name: str) -> Feed:
    with session_scope() as session:
        return feed_by_name(session, name)


def list_feeds() -> list[Feed]:
    with session_scope() as session:
        return list(session.exec(select(Feed).order_by(Feed.name)).all())


def connection_name(feed: Feed) -> str | None:
    if feed.connection_id is None:
        return None
    with session_scope() as session:
        conn = session.get(Connection, feed.connection_id)
        return conn.name if conn else None


def spec_of(feed: Feed) -> FeedSpec:
    return FeedSpec(
        name=feed.name, script=feed.script, connection=connection_name(feed),
        dependencies=list(feed.dependencies), load_type=feed.load_type, primary_key=list(feed.primary_key),
        destinations=list(feed.destinations), trigger=dict(feed.trigger), tags=list(feed.tags),
        timeout_s=feed.timeout_s, memory_limit_mb=feed.memory_limit_mb, retries=feed.retries,
        retry_backoff_s=feed.retry_backoff_s, max_rejected_ratio=feed.max_rejected_ratio,
        network=feed.network, schema_policy=feed.schema_policy, queue=feed.queue,
    )


def _sync_schedule(name: str) -> None:
    schedule_slots.sync_feed(name)


def export_yaml(names: list[str] | None = None) -> str:
    """Feed definitions as YAML. Connections are referred to by name: secrets never leave."""
    feeds = [f for f in list_feeds() if not names or f.name in names]
    missing = set(names or []) - {f.name for f in feeds}
    if missing:
        raise NotFound(f"feed(s) not found: {', '.join(sorted(missing))}")
    docs = [asdict(spec_of(feed)) for feed in feeds]
    import yaml

    return yaml.safe_dump({"version": 1, "feeds": docs}, sort_keys=False, allow_unicode=True)


def import_yaml(text: str, replace: bool = False) -> list[str]:
    """Create (or with replace=True, update) feeds from exported YAML. All or nothing:
    every definition is validated before any is written."""
    import yaml

    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValidationError.single("file", f"is not valid YAML: {exc}") from None
    items = doc.get("feeds") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ValidationError.single("file", "must contain a 'feeds' list")
    known = {f.name for f in fields(FeedSpec)}
    specs = []
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict) or "name" not in item:
            raise ValidationError.single("feeds", f"entry #{index} needs at least a name")
        try:
            spec = _with_defaults(FeedSpec(**{k: v for k, v in item.items() if k in known}))
            validate_spec(spec)
        except ValidationError as exc:
            raise ValidationError([(f"feed #{index} ({item['name']}) {field}", message)
                                   for field, message in exc.problems]) from None
        specs.append(spec)
    problems, seen = [], {}
    existing = {f.name.lower(): f.name for f in list_feeds()}
    for spec in specs:
        if spec.name.lower() in seen:
            problems.append(("feeds", f"{spec.name!r} is listed twice (names differing only in case name one table)"))
        seen[spec.name.lower()] = spec.name
        stored = existing.get(spec.name.lower())
        if stored is not None and stored != spec.name:
            problems.append(("feed name", f"{spec.name!r} differs only in case from the existing feed {stored!r}"))
    raise_if(problems)
    existing = set(existing.values())
    clashes = [s.name for s in specs if s.name in existing]
    if clashes and not replace:
        raise Conflict(f"feed(s) already exist: {', '.join(clashes)} (use replace to update them)")
    for spec in specs:
        if spec.name in existing:
            edit_feed(spec.name, **{k: v for k, v in asdict(spec).items() if k != "name"})
        else:
            create_feed(spec)
    return [s.name for s in specs]
