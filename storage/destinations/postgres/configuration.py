"""PostgreSQL's settings: the "postgres" section of the warehouse settings (settings.py stores
them), each field overridable by TRIBUTARY_POSTGRES_<FIELD>, e.g. TRIBUTARY_POSTGRES_URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from storage.destinations.configuration import Section


@dataclass(frozen=True)
class PostgresSettings(Section):
    section: ClassVar[str] = "postgres"
    secrets: ClassVar[frozenset[str]] = frozenset({"url"})

    url: str = ""  # postgresql://user:password@host:5432/database
    schema: str = "public"

    def problems(self) -> list[tuple[str, str]]:
        return url_problems(self.label("url"), self.url)


def url_problems(label: str, url: str) -> list[tuple[str, str]]:
    """A PostgreSQL wire URL (PostgreSQL, Redshift) must say so."""
    if url and not url.startswith(("postgresql://", "postgres://")):
        return [(label, "must start with postgresql://")]
    return []
