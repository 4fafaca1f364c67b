"""The settings interface every destination's configuration.py implements: a Section is one
part of the warehouse settings (warehouse.json, see settings.py), a frozen dataclass of plain
fields with defaults, which

    is named `section` in the file and in the Settings page's forms,
    names its secret fields (`secrets`: stored encrypted, shown masked, kept when a form
        leaves them blank),
    reads each field's override from TRIBUTARY_<SECTION>_<FIELD> (`env_name`), and
    reports what is wrong with it as (field label, message) pairs (`problems`), the label
        naming the section and the field, e.g. ("postgres url", "must start with postgresql://").

The local destinations (DuckDB, Parquet) need no credentials: their one path is a LocalSettings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import ClassVar, Self

from common.errors import TributaryError
from common.settings import Settings


@dataclass(frozen=True)
class Section:
    section: ClassVar[str]
    secrets: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"TRIBUTARY_{cls.section.upper()}_{field.upper()}"

    @classmethod
    def label(cls, field: str) -> str:
        """How a message names a field: "<section> <field, in words>"."""
        return f"{cls.section} {field.replace('_', ' ')}"

    def problems(self) -> list[tuple[str, str]]:
        """What is wrong with the values, as (label, message) pairs; none by default."""
        return []

    def with_environment(self, environ: Mapping[str, str] = os.environ) -> Self:
        """The section with every field its environment variable sets replaced."""
        changes = {}
        for f in fields(self):
            raw = environ.get(self.env_name(f.name))
            if raw is not None:
                changes[f.name] = self._from_text(f.name, raw)
        return replace(self, **changes)

    def _from_text(self, name: str, raw: str):
        if not isinstance(getattr(self, name), int):
            return raw
        try:
            return int(raw)
        except ValueError as exc:
            raise TributaryError(f"{self.env_name(name)} must be a whole number") from exc


@dataclass(frozen=True)
class LocalSettings:
    """A local destination's settings: one path, which is an app setting (common.settings,
    read from the environment variable `env` with the other paths), not a section of
    warehouse.json: a local destination needs no credentials."""

    setting: ClassVar[str]  # the Settings attribute holding the path
    env: ClassVar[str]

    path: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(path=Path(getattr(settings, cls.setting)))
