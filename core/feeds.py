"""Feed use cases: create, list, get, edit, delete, and export/import as YAML.

YAML, the scheduler and the trigger rules are imported where they are used: a run started
from the command line reads its feed through here and needs none of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from sqlmodel import select

from core import schedule_slots
from common.errors import Conflict, NotFound, ValidationError
from storage.models import ActiveRun, Connection, Feed, utcnow
from common.settings import get_settings
from core.validation import (
    LOAD_TYPES,
    dependency_problems,
    feed_name_problems,
    load_type_problems,
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


def validate_spec(spec: FeedSpec) -> None:
    problems = feed_name_problems(spec.name)
    if not spec.script.strip():
        problems.append(("script", "is empty"))
    problems += dependency_problems(spec.dependencies)
    problems += load_type_problems(spec.load_type, spec.primary_key)
    problems += _destination_problems(spec.destinations, spec.load_type)
    if spec.timeout_s is not None and spec.timeout_s <= 0:
        problems.append(("timeout", "must be a positive number of seconds"))
    if spec.memory_limit_mb is not None and spec.memory_limit_mb < 64:
        problems.append(("memory limit", "must be at least 64 MB"))
    if not 0 <= spec.retries <= 10:
        problems.append(("retries", "must be between 0 and 10"))
    if not 1 <= spec.retry_backoff_s <= 86400:
        problems.append(("retry backoff", "must be between 1 second and 1 day"))
    if not 0.0 <= spec.max_rejected_ratio <= 1.0:
        problems.append(("failed row threshold", "must be a share between 0 and 1 (e.g. 0.05 for 5%)"))
    from core.triggers import trigger_problems

    problems += trigger_problems(spec.trigger)
    raise_if(problems)


def _resolve_connection(session, name: str | None) -> int | None:
    if not name:
        return None
    conn = session.exec(select(Connection).where(Connection.name == name)).first()
    if conn is None:
        raise ValidationError.single("connection", f"{name!r} does not exist")
    return conn.id


def _with_defaults(spec: FeedSpec) -> FeedSpec:
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
    feed.updated_at = utcnow()


def create_feed(spec: FeedSpec) -> Feed:
    spec = _with_defaults(spec)
    validate_spec(spec)
    with session_scope() as session:
        if find_feed(session, spec.name):
            raise Conflict(f"feed name: {spec.name!r} is already taken")
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
        network=feed.network,
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
        spec = _with_defaults(FeedSpec(**{k: v for k, v in item.items() if k in known}))
        validate_spec(spec)
        specs.append(spec)
    existing = {f.name for f in list_feeds()}
    clashes = [s.name for s in specs if s.name in existing]
    if clashes and not replace:
        raise Conflict(f"feed(s) already exist: {', '.join(clashes)} (use replace to update them)")
    for spec in specs:
        if spec.name in existing:
            edit_feed(spec.name, **{k: v for k, v in asdict(spec).items() if k != "name"})
        else:
            create_feed(spec)
    return [s.name for s in specs]
