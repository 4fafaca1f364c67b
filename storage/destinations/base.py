"""The Destination interface: load one run's spool into a warehouse, idempotently by run id.

A destination receives a LoadRequest (the spool's JSON-lines files, the load type, the
primary key, the run id and load time) and commits it in one transaction of its own, or not
at all. `has_run` lets a retried load skip a destination that already holds the run. What a
destination can do is declared in `capabilities`, so callers never branch on names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

RUN_ID_COLUMN = "_tributary_run_id"
LOADED_AT_COLUMN = "_tributary_loaded_at"
AUDIT_COLUMNS = (RUN_ID_COLUMN, LOADED_AT_COLUMN)


@dataclass(frozen=True)
class Capabilities:
    load_types: frozenset[str]
    json_type: str
    max_identifier_length: int = 63
    supports_schema_evolution: bool = True


@dataclass
class LoadRequest:
    table: str
    files: list[Path]
    load_type: str  # incremental | truncate_insert | upsert
    run_id: str
    loaded_at: datetime
    primary_key: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    rows: int
    skipped: bool = False  # the destination already held this run id
    location: str = ""


class Destination(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @abstractmethod
    def describe_target(self, table: str) -> str:
        """Where a feed's data lands, in words a user understands."""

    @abstractmethod
    def has_run(self, table: str, run_id: str) -> bool: ...

    @abstractmethod
    def load(self, request: LoadRequest) -> LoadResult: ...

    @abstractmethod
    def drop(self, table: str) -> None: ...

    def check(self) -> None:
        """Raise with a clear message when the destination cannot be reached."""
