"""The detected schema of a test: the columns and types the test's records would make, by the
rules the destinations load with (storage/destinations/schema.py), and, when the feed exists
and its table does in a destination, what a run with these records would do to the table's
current columns: add, widen, keep, or reject.

    {"records": 10,
     "columns": [{"field", "type", "types_seen", "nulls"}],
     "destinations": [{"destination", "table", "table_exists", "error",
                       "columns": [{"column", "field", "current", "detected", "status", "why"}]}]}

status: same | new | widened | rejected | absent (a column of the table no record has).
Reading the destination never writes to it: the embedded DuckDB file is read by
core.warehouse_reader in a process of its own, read-only; a missing file is a missing table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from common.settings import Settings
from storage.destinations import get_destination
from storage.destinations.base import AUDIT_COLUMNS
from storage.destinations.column_types import VALUE_WORDS, ColumnType, accepts, join
from storage.destinations.schema import ExistingColumns, RunProfile, plan_schema

PROJECT_ROOT = Path(__file__).resolve().parent.parent
READ_TIMEOUT_S = 20


def detected_columns(records: list[dict]) -> tuple[RunProfile, list[dict]]:
    profile = RunProfile()
    profile.add(records)
    columns = []
    for name, seen in profile.fields.items():
        nulls = sum(1 for r in records if isinstance(r, dict) and r.get(name) is None)
        columns.append({"field": name, "type": join(seen).value, "types_seen": sorted(t.value for t in seen),
                        "nulls": nulls})
    return profile, columns


def detected_schema(records: list[dict], feed_name: str | None = None, destinations: list[str] | None = None,
                    settings: Settings | None = None) -> dict:
    """The schema the records make, compared with each destination's table of the feed."""
    profile, columns = detected_columns(records)
    schema = {"records": len(records), "columns": columns, "destinations": [], "policy": policy_of(feed_name)}
    if not feed_name or not records:
        return schema
    for name in destinations or []:
        schema["destinations"].append(compare_with_destination(profile, feed_name, name, settings))
    return schema


def compare_with_destination(profile: RunProfile, table: str, name: str, settings: Settings | None = None) -> dict:
    view = {"destination": name, "table": table, "table_exists": False, "error": None, "columns": []}
    try:
        destination = get_destination(name, settings)
        existing, native = _current_columns(destination, table)
    except Exception as exc:  # noqa: BLE001 - the comparison informs; a test never fails for it
        view["error"] = f"the table's columns could not be read: {type(exc).__name__}: {exc}"
        return view
    view["table"] = _table_name(destination, table)
    view["table_exists"] = existing is not None
    plan = plan_schema(view["table"], profile, existing, destination.capabilities, native)
    for column in plan.columns:
        seen = profile.fields.get(column.field, set()) if column.field else set()
        current = existing.get(column.name) if existing else None
        entry = {"column": column.name, "field": column.field, "current": current[1] if current else None,
                 "detected": column.native, "status": column.status, "why": None}
        if column.status == "existing":
            misfits = {t for t in seen if not accepts(column.type, t)}
            if misfits:
                words = " or ".join(sorted(VALUE_WORDS[t] for t in misfits))
                entry["status"] = "rejected"
                entry["why"] = f"a {column.native} column cannot take {words}: those rows would be rejected"
            else:
                entry["status"] = "same"
        elif column.status == "widened":
            entry["why"] = f"from {column.previous} to {column.native}"
        elif column.status == "absent":
            entry["detected"] = None
            entry["why"] = "no record of the test has this field: it stays null"
        view["columns"].append(entry)
    for field_name, why in plan.unloadable.items():
        view["columns"].append({"column": None, "field": field_name, "current": None, "detected": None,
                                "status": "rejected", "why": why})
    return view


def _table_name(destination, table: str) -> str:
    table_name = getattr(destination, "table_name", None)
    return table_name(table) if callable(table_name) else table


def _current_columns(destination, table: str) -> tuple[ExistingColumns | None, object]:
    """The table's current columns (None: no table) and the destination's type names."""
    name = getattr(destination, "name", "")
    if name == "duckdb":
        return _duckdb_columns(destination, table), destination.dialect.native
    if hasattr(destination, "existing_columns") and hasattr(destination, "dialect"):
        with destination.connect() as session:
            existing = destination.existing_columns(session, destination.table_name(table))
        return existing, destination.dialect.native
    listed = _file_columns(destination, table)
    existing = {c["name"]: (ColumnType(c["type"]), c["type"]) for c in listed} or None
    return existing, lambda kind: kind.value


def _file_columns(destination, table: str) -> list[dict]:
    """A file destination's columns, as its state (local Parquet) or manifest (S3) lists them."""
    if hasattr(destination, "manifest"):
        current = destination.manifest(table) or {}
    elif hasattr(destination, "_state"):
        current = destination._state(table)
    else:
        current = {}
    return list(current.get("columns") or [])


def _duckdb_columns(destination, table: str) -> ExistingColumns | None:
    """The embedded warehouse's columns, read by core.warehouse_reader (read-only, its own process)."""
    from storage.destinations.sql import column_type_of

    path = Path(destination.path)
    if not path.exists():
        return None
    name = destination.table_name(table).replace("'", "''")
    sql = ("SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
           f"WHERE table_schema = current_schema() AND lower(table_name) = lower('{name}') ORDER BY ordinal_position")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PROJECT_ROOT),
           "LANG": os.environ.get("LANG", "C.UTF-8")}
    proc = subprocess.run([sys.executable, "-m", "core.warehouse_reader", str(path), "10000"],
                          input=json.dumps({"sql": sql}).encode("utf-8"), capture_output=True,
                          timeout=READ_TIMEOUT_S, env=env, cwd=str(PROJECT_ROOT))
    if proc.returncode != 0:
        text = proc.stderr.decode("utf-8", errors="replace").strip()
        try:
            text = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            pass
        raise RuntimeError(text or f"the warehouse reader exited with {proc.returncode}")
    import pyarrow as pa

    rows = pa.ipc.open_stream(proc.stdout).read_all().to_pylist()
    if not rows:
        return None
    audit = {destination.ident(c) for c in AUDIT_COLUMNS}
    return {r["column_name"]: (column_type_of(r["data_type"], r["numeric_scale"]), r["data_type"])
            for r in rows if r["column_name"] not in audit}


def destinations_of(feed_name: str | None) -> list[str]:
    """The destinations of a saved feed (none for a feed not saved yet)."""
    if not feed_name:
        return []
    from core.feeds import get_feed
    from common.errors import NotFound

    try:
        return list(get_feed(feed_name).destinations)
    except NotFound:
        return []


def policy_of(feed_name: str | None) -> str:
    """The saved feed's schema policy (what a run would do with a change), evolve otherwise."""
    if not feed_name:
        return "evolve"
    from common.errors import NotFound
    from core.feeds import get_feed

    try:
        return get_feed(feed_name).schema_policy or "evolve"
    except NotFound:
        return "evolve"


__all__ = ["detected_schema", "detected_columns", "compare_with_destination", "destinations_of"]
