"""Snowflake's settings: the "snowflake" section of the warehouse settings (settings.py stores
them), each field overridable by TRIBUTARY_SNOWFLAKE_<FIELD>, e.g. TRIBUTARY_SNOWFLAKE_PASSWORD."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from storage.destinations.configuration import Section


@dataclass(frozen=True)
class SnowflakeSettings(Section):
    section: ClassVar[str] = "snowflake"
    secrets: ClassVar[frozenset[str]] = frozenset({"password"})

    account: str = ""
    user: str = ""
    password: str = ""
    database: str = ""
    schema: str = "PUBLIC"
    warehouse: str = ""
    role: str = ""
    host: str = ""  # empty: <account>.snowflakecomputing.com
    port: int = 443
    protocol: str = "https"
