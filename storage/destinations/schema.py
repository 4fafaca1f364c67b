"""Schema planning: what a run's records look like (first pass over the spool), and how the
destination's table must change to take them (new columns, widened columns, unloadable fields).

Types are inferred over the whole run before anything is written, so a column created by a
run has one type in every chunk and every staged file of that run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from storage.destinations import spool
from storage.destinations.base import AUDIT_COLUMNS, Capabilities, SchemaFrozenError
from storage.destinations.column_types import INT64_MAX, INT64_MIN, TIMESTAMP_PATTERN, ColumnType, join, widened

_SCALAR_KINDS = {bool: ColumnType.BOOLEAN, float: ColumnType.FLOAT}


@dataclass
class RunProfile:
    """The value types each field took in one run, fields in the order they first appeared."""

    records: int = 0
    fields: dict[str, set[ColumnType]] = field(default_factory=dict)

    def add(self, rows: list) -> None:
        self.records += len(rows)
        objects = [r for r in rows if type(r) is dict]
        for key in dict.fromkeys(chain.from_iterable(objects)):
            seen = self.fields.setdefault(key, set())
            seen |= _types_of([r.get(key) for r in objects], seen)


def _types_of(values: list, seen: set[ColumnType]) -> set[ColumnType]:
    found: set[ColumnType] = set()
    for kind in set(map(type, values)):
        if kind is type(None):
            continue
        if kind in _SCALAR_KINDS:
            found.add(_SCALAR_KINDS[kind])
        elif kind is int:
            ints = [v for v in values if type(v) is int]
            if min(ints) >= INT64_MIN and max(ints) <= INT64_MAX:
                found.add(ColumnType.INTEGER)
            else:
                found.update(ColumnType.INTEGER if INT64_MIN <= v <= INT64_MAX else ColumnType.STRING for v in ints)
        elif kind is str:
            found |= _string_types(values, seen | found)
        else:
            found.add(ColumnType.JSON)
    return found


def _string_types(values: list, known: set[ColumnType]) -> set[ColumnType]:
    """Whether the strings are timestamps or plain text. Once a field has held plain text its
    timestamps no longer matter (a new column becomes text, an existing timestamp column must
    widen or reject the text either way), so the check stops there."""
    if ColumnType.STRING in known:
        return set()
    import pyarrow as pa  # here, not at the top: DuckDB's staged load never needs Arrow
    import pyarrow.compute as pc

    strings = pa.array([v for v in values if type(v) is str], pa.string())
    matches = pc.sum(pc.match_substring_regex(strings, TIMESTAMP_PATTERN)).as_py() or 0
    found = {ColumnType.TIMESTAMP} if matches else set()
    return found | ({ColumnType.STRING} if matches < len(strings) else set())


def profile_spool(files: list[Path], chunk_rows: int = spool.DEFAULT_CHUNK_ROWS) -> RunProfile:
    profile = RunProfile()
    for rows in spool.read_chunks(files, chunk_rows):
        profile.add(rows)
    return profile


@dataclass
class PlannedColumn:
    name: str  # the column's name in the destination
    type: ColumnType
    native: str  # the destination's type name, for DDL and messages
    status: str  # existing | new | widened | absent (in the table, but no record of this run has it)
    field: str | None = None  # the record field that feeds it
    previous: str | None = None  # the native type before widening


@dataclass
class SchemaPlan:
    table: str
    table_exists: bool
    columns: list[PlannedColumn]  # the table's order: existing columns first, then new ones
    unloadable: dict[str, str] = field(default_factory=dict)  # field -> why it cannot be loaded
    dropped: list[str] = field(default_factory=list)  # fields left out by the discard_new_columns policy

    @property
    def loaded(self) -> list[PlannedColumn]:
        """The columns this run writes (absent ones stay null)."""
        return [c for c in self.columns if c.status != "absent"]

    @property
    def new(self) -> list[PlannedColumn]:
        return [c for c in self.columns if c.status == "new"]

    @property
    def widened(self) -> list[PlannedColumn]:
        return [c for c in self.columns if c.status == "widened"]

    def column_for(self, field_name: str) -> PlannedColumn | None:
        return next((c for c in self.columns if c.field == field_name), None)

    def changes(self) -> list[str]:
        if not self.table_exists:
            return [f"created table {self.table} with {len(self.columns)} columns"] if self.columns else []
        changes = [f"added column {c.name} ({c.native})" for c in self.new]
        changes += [f"widened column {c.name} from {c.previous} to {c.native}" for c in self.widened]
        changes += [f"dropped field {f}: no column is added for it (schema policy: discard new columns)"
                    for f in self.dropped]
        return changes

    def diff(self) -> dict:
        """The change as data, for the run's schema history: {} when the table is unchanged."""
        return schema_diff(
            created=not self.table_exists and bool(self.columns),
            added=[(c.name, c.native) for c in (self.columns if not self.table_exists else self.new)],
            widened=[(c.name, c.previous, c.native) for c in self.widened], dropped=self.dropped)


def schema_diff(created: bool, added: list[tuple[str, str]], widened: list[tuple[str, str, str]],
                dropped: list[str]) -> dict:
    """The change as a run's schema history keeps it (type names as SQL writes them, in capitals)."""
    if not (created or added or widened or dropped):
        return {}
    return {"created": created, "added": [{"column": n, "type": t.upper()} for n, t in added],
            "widened": [{"column": n, "from": (a or "").upper(), "to": b.upper()} for n, a, b in widened],
            "dropped": list(dropped)}


def frozen_error(table: str, added: list[tuple[str, str]], widened: list[tuple[str, str, str]]) -> SchemaFrozenError:
    what = [f"add column {n} ({t})" for n, t in added] + [f"widen column {n} from {a} to {b}" for n, a, b in widened]
    return SchemaFrozenError(f"the schema of table {table} is frozen (schema policy: freeze), and this run would "
                             f"{', '.join(what)}; nothing was loaded and the table is unchanged")


def apply_policy(plan: SchemaPlan, policy: str) -> SchemaPlan:
    """Hold the plan to the feed's schema policy (see base.SCHEMA_POLICIES): raises
    SchemaFrozenError under freeze, leaves new fields out under discard_new_columns. A table's
    first load creates it whatever the policy."""
    if not plan.table_exists or policy == "evolve":
        return plan
    if policy == "freeze" and (plan.new or plan.widened):
        raise frozen_error(plan.table, [(c.name, c.native) for c in plan.new],
                           [(c.name, c.previous, c.native) for c in plan.widened])
    if policy == "discard_new_columns" and plan.new:
        plan.dropped = [c.field or c.name for c in plan.new]
        plan.columns = [c for c in plan.columns if c.status != "new"]
    return plan


ExistingColumns = dict[str, tuple[ColumnType, str]]  # column name -> (type, native type)


def plan_schema(
    table: str,
    profile: RunProfile,
    existing: ExistingColumns | None,
    capabilities: Capabilities,
    native_type: Callable[[ColumnType], str],
) -> SchemaPlan:
    """Match the run's fields to the table's columns (existing=None: no table yet)."""
    rules = capabilities.identifiers
    columns = [
        PlannedColumn(name=name, type=kind, native=native, status="absent")
        for name, (kind, native) in (existing or {}).items()
    ]
    by_identity = {rules.identity(c.name): c for c in columns}
    reserved = {rules.identity(rules.name(a)) for a in AUDIT_COLUMNS}
    claimed: dict[str, str] = {}
    unloadable: dict[str, str] = {}
    for field_name, seen in profile.fields.items():
        name = rules.name(field_name)
        identity = rules.identity(name)
        if identity in reserved:
            unloadable[field_name] = f"field {field_name!r} is reserved for Tributary's audit columns"
            continue
        if identity in claimed:
            unloadable[field_name] = f"fields {claimed[identity]!r} and {field_name!r} would both be column {name}"
            continue
        claimed[identity] = field_name
        column = by_identity.get(identity)
        if column is None:
            kind = join(seen)
            columns.append(PlannedColumn(name=name, type=kind, native=native_type(kind), status="new", field=field_name))
            continue
        column.field, column.status = field_name, "existing"
        wider = widened(column.type, seen) if capabilities.widens_columns else None
        if wider is not None:
            column.previous, column.type, column.native, column.status = column.native, wider, native_type(wider), "widened"
    return SchemaPlan(table=table, table_exists=existing is not None, columns=columns, unloadable=unloadable)


def plan_file_schema(table: str, profile: RunProfile, listed: list[dict], capabilities: Capabilities,
                     policy: str = "evolve") -> SchemaPlan:
    """The plan of a file destination (local Parquet, S3), whose state lists its columns as
    {"name", "type"} with the type's ColumnType value as its native name (none listed: no table
    yet), held to the feed's schema policy."""
    existing = {c["name"]: (ColumnType(c["type"]), c["type"]) for c in listed} or None
    return apply_policy(plan_schema(table, profile, existing, capabilities, lambda kind: kind.value), policy)
