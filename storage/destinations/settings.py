"""Warehouse credentials: PostgreSQL, Redshift (+ its S3 staging), S3 and Snowflake.

Stored encrypted at rest (the app's Fernet key, see common.secrets) in <data dir>/warehouse.json,
with mode 0600. Any field can be overridden by an environment variable named
TRIBUTARY_<SECTION>_<FIELD>, e.g. TRIBUTARY_POSTGRES_URL or TRIBUTARY_SNOWFLAKE_PASSWORD, which
is how a deployment injects secrets without the UI. Which warehouse is in use stays
TRIBUTARY_WAREHOUSE (common.settings); this module only holds how to reach each one.
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

FILE_NAME = "warehouse.json"


@dataclass(frozen=True)
class PostgresSettings:
    url: str = ""  # postgresql://user:password@host:5432/database
    schema: str = "public"


@dataclass(frozen=True)
class S3Settings:
    bucket: str = ""
    prefix: str = "tributary"
    region: str = "us-east-1"
    endpoint_url: str = ""  # empty: AWS; set for an S3-compatible service
    access_key_id: str = ""  # empty: boto3's default chain (instance role, ~/.aws, AWS_* variables)
    secret_access_key: str = ""
    file_format: str = "parquet"  # parquet | jsonl


@dataclass(frozen=True)
class RedshiftSettings:
    url: str = ""  # postgresql://user:password@cluster.region.redshift.amazonaws.com:5439/dev
    schema: str = "public"
    iam_role: str = ""  # the role COPY assumes to read the staged files; else the S3 keys are used
    staging_prefix: str = "tributary-staging"  # in the S3 settings' bucket


@dataclass(frozen=True)
class SnowflakeSettings:
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


@dataclass(frozen=True)
class WarehouseSettings:
    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    redshift: RedshiftSettings = field(default_factory=RedshiftSettings)
    snowflake: SnowflakeSettings = field(default_factory=SnowflakeSettings)


SECTIONS = {f.name: f.default_factory for f in fields(WarehouseSettings)}
SECRET_FIELDS = {("postgres", "url"), ("redshift", "url"), ("s3", "secret_access_key"), ("snowflake", "password")}
FILE_FORMATS = ("parquet", "jsonl")


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
    sections = {}
    for name in SECTIONS:
        section = getattr(current, name)
        changes = {}
        for f in fields(section):
            raw = os.environ.get(f"TRIBUTARY_{name.upper()}_{f.name.upper()}")
            if raw is None:
                continue
            if isinstance(getattr(section, f.name), int):
                try:
                    changes[f.name] = int(raw)
                except ValueError as exc:
                    raise TributaryError(f"TRIBUTARY_{name.upper()}_{f.name.upper()} must be a whole number") from exc
            else:
                changes[f.name] = raw
        sections[name] = replace(section, **changes)
    return WarehouseSettings(**sections)


def load_warehouse_settings(settings: Settings | None = None) -> WarehouseSettings:
    """The settings in force: the stored ones, with environment variables taking precedence."""
    return _env_overrides(stored_warehouse_settings(settings))


def warehouse_problems(ws: WarehouseSettings) -> list[tuple[str, str]]:
    problems = []
    if ws.s3.file_format not in FILE_FORMATS:
        problems.append(("s3 file format", f"must be one of {', '.join(FILE_FORMATS)}"))
    for name, url in (("postgres", ws.postgres.url), ("redshift", ws.redshift.url)):
        if url and not url.startswith(("postgresql://", "postgres://")):
            problems.append((f"{name} url", "must start with postgresql://"))
    return problems


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
    kept = {k: v for k, v in values.items() if not ((section, k) in SECRET_FIELDS and v in ("", MASK, None))}
    for name, value in kept.items():
        if isinstance(getattr(part, name), int) and not isinstance(value, int):
            try:
                kept[name] = int(value)
            except (TypeError, ValueError):
                raise ValidationError.single(f"{section} {name}", "must be a whole number") from None
    updated = replace(current, **{section: replace(part, **kept)})
    save_warehouse_settings(updated, settings)
    return updated


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


def test_connection(warehouse: str | None = None, settings: Settings | None = None) -> list[ConnectionCheck]:
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


test_connection.__test__ = False  # a service, not a pytest test, despite its name


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
