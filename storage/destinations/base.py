"""The destination extension point, declared in one place: the Destination and Stager
interfaces, with their docstrings as the contract, and the values they exchange.

A destination receives a LoadRequest (the spool's JSON-lines files, the load type, the
primary key, the run id and load time) and commits it in one transaction of its own, or not
at all. `has_run` lets a retried load skip a destination that already holds the run. What a
destination can do is declared in `capabilities`, so callers never branch on names.
Implementations are registered by name in storage/destinations/__init__.py, one package each
(<name>/configuration.py: its settings; <name>/destination.py: the implementation), and
tests/destinations/test_destination_contract.py runs one contract suite over all of them. Two
narrower interfaces serve the implementations: configuration.Section (a destination's part of
the warehouse settings) and sql_warehouse.TableLoad (a SQL warehouse's load step).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from common.errors import TributaryError

RUN_ID_COLUMN = "_tributary_run_id"
LOADED_AT_COLUMN = "_tributary_loaded_at"
AUDIT_COLUMNS = (RUN_ID_COLUMN, LOADED_AT_COLUMN)
LOAD_LEDGER = "_tributary_loads"  # one row per committed load: what makes a retried load idempotent
REJECTS_SUFFIX = "__rejected"
REJECT_FIELDS = ("reason", "record")  # the rejects table's own columns, before the audit columns
POSITION_COLUMN = "_tributary_pos"  # a record's place in the run: the last record of a key wins an upsert
LOAD_TYPE_TITLES = {"incremental": "Incremental", "truncate_insert": "Truncate and Insert", "upsert": "Upsert"}


class LoadError(TributaryError):
    """A load that cannot go ahead; the destination is left as it was."""


class SpoolError(LoadError):
    """The spool itself is unreadable (a truncated or corrupted file)."""


class RejectedRowsError(LoadError):
    """More records were rejected than the feed's failed row threshold allows."""


class SchemaFrozenError(LoadError):
    """The feed's schema policy is freeze and the run would add or widen a column."""


# What a load does when a run's records do not fit the table it loads into (an existing table;
# a table's first load always creates it): evolve adds and widens columns, freeze fails the load
# before it commits, naming the columns, discard_new_columns leaves the fields without a column
# out (widening still happens: the values are kept) and reports them.
SCHEMA_POLICIES = {"evolve": "Evolve: add and widen columns", "freeze": "Freeze: fail the run",
                   "discard_new_columns": "Discard new columns"}


@dataclass(frozen=True)
class IdentifierRules:
    """How a record's field names become column names in one system."""

    max_length: int = 63  # counted in UTF-8 bytes: PostgreSQL and Redshift limit bytes, not characters
    case: str = "preserve"  # preserve | lower | upper: the case the system folds unquoted names to
    case_insensitive: bool = False  # DuckDB: "ID" and "id" name the same column even when quoted

    def name(self, field_name: str) -> str:
        name = field_name.lower() if self.case == "lower" else field_name.upper() if self.case == "upper" else field_name
        if not name:
            name = "_"
        if len(name.encode()) <= self.max_length:
            return name
        # Too long: keep a readable prefix and a hash of the whole name so that two long names
        # sharing a prefix stay distinct, and the same field always maps to the same column.
        suffix = "_" + hashlib.sha1(field_name.encode()).hexdigest()[:8]
        prefix = name.encode()[: self.max_length - len(suffix)].decode(errors="ignore")
        return prefix + suffix

    def identity(self, name: str) -> str:
        """What two names must share to be the same column."""
        return name.lower() if self.case_insensitive or self.case != "preserve" else name


@dataclass(frozen=True)
class Capabilities:
    load_types: frozenset[str]
    json_type: str
    identifiers: IdentifierRules = IdentifierRules()
    widens_columns: bool = False  # integer -> float -> string in place, inside the load's transaction
    max_text_bytes: int | None = None  # longer strings are rejected (Redshift VARCHAR holds 65535 bytes)
    text_allows_nul: bool = True  # PostgreSQL and Redshift text cannot hold U+0000
    supports_schema_evolution: bool = True
    # Its data is a file on the host that loads it (the app's data dir: the DuckDB file, the
    # Parquet folder): only a process on the app's host can load it (core/queues.py).
    local_files: bool = False

    @property
    def max_identifier_length(self) -> int:
        return self.identifiers.max_length


@dataclass
class LoadRequest:
    table: str
    files: list[Path]
    load_type: str  # incremental | truncate_insert | upsert
    run_id: str
    loaded_at: datetime
    primary_key: list[str] = field(default_factory=list)
    # The feed's failed row threshold: the share of records that may be rejected (0.0 - 1.0)
    # before the load fails instead of committing the rest.
    max_rejected_ratio: float = 0.0
    # The work a stager of this destination did while the script ran (see Stager), if any.
    staged: Stager | None = None
    schema_policy: str = "evolve"  # see SCHEMA_POLICIES


@dataclass
class LoadResult:
    rows: int
    skipped: bool = False  # the destination already held this run id
    location: str = ""
    rejected: int = 0  # records written to the rejects table instead
    schema_changes: list[str] = field(default_factory=list)  # e.g. "added column x (BIGINT)"
    # The same, as data (see schema.SchemaPlan.diff): created, added, widened, dropped.
    schema_diff: dict = field(default_factory=dict)
    rejected_reasons: list[str] = field(default_factory=list)  # a sample of why records were rejected


class Stager(ABC):
    """Work a destination does on each complete part of a run's spool while the script is
    still writing the next one (parsing, typing, converting), so that load() has little left
    to do once the script ends. A stager never touches the destination itself, holds no lock
    on it and commits nothing: the load still happens, in one transaction, after the script
    succeeded. A stager that meets data it cannot handle stops working and says so in
    `gave_up`; load() then takes the run the usual way."""

    gave_up: str | None = None

    @abstractmethod
    def add(self, part: Path) -> None:
        """Take the next part of the spool (see spool.fields_of for its field list). Parts come
        in order, from one thread."""

    def script_ended(self) -> None:
        """The script has ended: the parts left may use every core. Called while add() may be
        running on another thread."""

    def close(self) -> None:
        """Let go of what the stager holds (files, connections)."""


def undo_keeping_error(error: BaseException, undo: Callable[[], object], what: str) -> None:
    """Take back a failed load's work (ROLLBACK, deleting uploaded files). An undo that fails
    too never replaces the first error: it is added to it as a note, and the caller raises the
    first error."""
    try:
        undo()
    except Exception as failure:  # noqa: BLE001 - whatever the driver raises, the first error wins
        error.add_note(f"{what} failed as well: {type(failure).__name__}: {failure}")


class Destination(ABC):
    """Where a feed's records land. Constructed with the app's Settings (or None: the
    process's), and optionally its configuration given directly; constructing one and
    describing a target never connects, needs no credentials and imports no driver."""

    name: ClassVar[str]  # the registry's name, stored on a feed
    title: ClassVar[str]  # what a user sees
    capabilities: ClassVar[Capabilities]

    @abstractmethod
    def describe_target(self, table: str) -> str:
        """Where a feed's data lands, in words a user understands."""

    @abstractmethod
    def has_run(self, table: str, run_id: str) -> bool:
        """Whether a load of this run id into this table has committed: what recovery and a
        retried load ask. True even when the run loaded no rows, or a later Truncate and
        Insert replaced them."""

    @abstractmethod
    def load(self, request: LoadRequest) -> LoadResult:
        """Commit the run's records, its rejects and its run id together, or nothing.

        A run id the destination already holds is not loaded again: the result says
        `skipped`. A load type outside `capabilities.load_types`, an upsert without a key, a
        damaged spool (SpoolError), more rejects than the threshold allows (RejectedRowsError)
        or, under the freeze schema policy, a column to add or widen (SchemaFrozenError) fail
        the load before it commits. Under discard_new_columns the fields an existing table has
        no column for are left out. The result says what changed (schema_changes, schema_diff). Whatever fails, the destination is left as it was
        (rows, columns, and no run id), and the error raised is the first one: an undo that
        fails too is a note on it (see undo_keeping_error)."""

    @abstractmethod
    def drop(self, table: str) -> None:
        """Remove a feed's data, its rejects and its run ids (the feed is deleted)."""

    def check(self) -> None:
        """Raise with a clear message when the destination cannot be reached."""

    def stager(self, load_type: str, work_dir: Path) -> Stager | None:
        """A stager for a run's parts (work_dir: a directory of its own to work in), or None
        when the load has nothing to do before the whole spool is there."""
        return None

    def require_load_type(self, request: LoadRequest) -> None:
        if request.load_type not in self.capabilities.load_types:
            offered = ", ".join(LOAD_TYPE_TITLES.get(t, t) for t in sorted(self.capabilities.load_types))
            raise LoadError(
                f"{self.title} does not support the load type "
                f"{LOAD_TYPE_TITLES.get(request.load_type, request.load_type)} (it offers {offered})"
            )
        if request.load_type == "upsert" and not request.primary_key:
            raise LoadError("Upsert needs a primary key: name one or more fields")
