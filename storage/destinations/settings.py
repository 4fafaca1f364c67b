"""The warehouse settings: every destination's section (each declared beside its destination,
in <name>/configuration.py, as a configuration.Section) kept together in one file.

Stored encrypted at rest (the app's Fernet key, see common.secrets) in <data dir>/warehouse.json,
with mode 0600. Any field can be overridden by an environment variable named
TRIBUTARY_<SECTION>_<FIELD>, e.g. TRIBUTARY_POSTGRES_URL or TRIBUTARY_SNOWFLAKE_PASSWORD, which
is how a deployment injects secrets without the UI. Which warehouse is in use stays
TRIBUTARY_WAREHOUSE (common.settings); this module only holds how to reach each one. The
sections' classes are re-exported here for the code that imported them from this module.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from common.errors import TributaryError, ValidationError
from common.secrets import MASK, decrypt_json, encrypt_json
from common.settings import Settings, get_settings
from storage.destinations.postgres.configuration import PostgresSettings
from storage.destinations.redshift.configuration import RedshiftSettings
from storage.destinations.s3.configuration import FILE_FORMATS, S3Settings
from storage.destinations.snowflake.configuration import SnowflakeSettings

FILE_NAME = "warehouse.json"

__all__ = [
    "FILE_FORMATS", "SECRET_FIELDS", "SECTIONS", "ConnectionCheck", "PostgresSettings", "RedshiftSettings",
    "S3Settings", "SnowflakeSettings", "WarehouseSettings", "load_warehouse_settings", "masked",
    "save_warehouse_settings", "stored_warehouse_settings", "check_connections", "update_warehouse_settings",
    "warehouse_problems",
]


@dataclass(frozen=True)
class WarehouseSettings:
    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    redshift: RedshiftSettings = field(default_factory=RedshiftSettings)
    snowflake: SnowflakeSettings = field(default_factory=SnowflakeSettings)

    def sections(self):
        return [getattr(self, name) for name in SECTIONS]


SECTIONS = {f.name: f.default_factory for f in fields(WarehouseSettings)}
SECRET_FIELDS = {(name, secret) for name, factory in SECTIONS.items() for secret in factory().secrets}


def _path(settings: Settings | None) -> Path:
    return (settings or get_settings()).data_dir / FILE_NAME


def _from_dict(data: dict) -> WarehouseSettings:
    sections = {}
    for name, factory in SECTIONS.items():
        default = factory()
        known = {f.name for f in fields(default)}
        values = {k: v for k, v in (data.get(name) or {}).items() if k in known}
        sections[name] = replace(default, **values)
    return WarehouseSettings(**sections)


def stored_warehouse_settings(settings: Settings | None = None) -> WarehouseSettings:
    """What the settings file holds, without environment overrides (what the UI edits)."""
    path = _path(settings)
    if not path.exists():
        return WarehouseSettings()
    try:
        envelope = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TributaryError(f"{path} is not valid JSON: {exc}") from exc
    return _from_dict(decrypt_json(envelope.get("encrypted")))


def _env_overrides(current: WarehouseSettings) -> WarehouseSettings:
    return WarehouseSettings(**{name: getattr(current, name).with_environment() for name in SECTIONS})


def load_warehouse_settings(settings: Settings | None = None) -> WarehouseSettings:
    """The settings in force: the stored ones, with environment variables taking precedence."""
    return _env_overrides(stored_warehouse_settings(settings))


def warehouse_problems(ws: WarehouseSettings) -> list[tuple[str, str]]:
    return [problem for section in ws.sections() for problem in section.problems()]


def save_warehouse_settings(ws: WarehouseSettings, settings: Settings | None = None) -> None:
    problems = warehouse_problems(ws)
    if problems:
        raise ValidationError(problems)
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"version": 1, "encrypted": encrypt_json(asdict(ws))}, handle)
    os.replace(tmp, path)


def update_warehouse_settings(section: str, settings: Settings | None = None, **values) -> WarehouseSettings:
    """Change some fields of one section (a form's submit). A secret left empty or masked keeps
    its stored value, so a form can show secrets masked without erasing them."""
    if section not in SECTIONS:
        raise ValidationError.single("warehouse", f"unknown section {section!r}; choose from {', '.join(SECTIONS)}")
    current = stored_warehouse_settings(settings)
    part = getattr(current, section)
    known = {f.name for f in fields(part)}
    unknown = set(values) - known
    if unknown:
        raise ValidationError.single(section, f"unknown field(s): {', '.join(sorted(unknown))}")
    kept = {k: _form_value(part, k, v) for k, v in values.items()
            if not ((section, k) in SECRET_FIELDS and v in ("", MASK, None))}
    updated = replace(current, **{section: replace(part, **kept)})
    save_warehouse_settings(updated, settings)
    return updated


def _form_value(part, name: str, value):
    """A form's value for a field: whole numbers for the numeric fields."""
    if not isinstance(getattr(part, name), int) or isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError.single(part.label(name), "must be a whole number") from None


def masked(ws: WarehouseSettings) -> dict:
    """The settings as a UI shows them: secrets replaced by a mask (a URL keeps all but its password)."""
    view = asdict(ws)
    for section, name in SECRET_FIELDS:
        value = view[section][name]
        if not value:
            continue
        view[section][name] = _mask_url(value) if name == "url" else MASK
    return view


def _mask_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:{MASK}@{host}"


@dataclass
class ConnectionCheck:
    destination: str
    title: str
    ok: bool
    message: str


def check_connections(warehouse: str | None = None, settings: Settings | None = None) -> list[ConnectionCheck]:
    """Reach every destination the warehouse offers (the UI's "Test connection" button)."""
    from storage.destinations import destination_class, destinations_for_warehouse

    settings = settings or get_settings()
    results = []
    for name in destinations_for_warehouse(warehouse or settings.warehouse):
        cls = destination_class(name)
        try:
            destination = cls(settings)
            destination.check()
        except Exception as exc:  # noqa: BLE001 - every driver's error becomes a message for the user
            results.append(ConnectionCheck(name, cls.title, False, _first_line(exc)))
        else:
            results.append(ConnectionCheck(name, cls.title, True, f"connected: {destination.describe_target('<feed>')}"))
    return results




def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
