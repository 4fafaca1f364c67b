"""What the Settings page shows and does, without Streamlit: the warehouse in use and its
credential forms, the runner's health, and the settings read from the environment.

Secrets never leave this module in clear: a stored secret is reported as stored (the form shows
a mask and keeps the value when left blank), URLs lose their passwords, and connection checks
have any stored secret scrubbed from their messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from app_pages.access import allowed_hosts
from common.errors import TributaryError, ValidationError
from common.secrets import MASK, mask, secret_strings
from common.settings import Settings, get_settings
from storage.destinations.settings import (
    FILE_FORMATS,
    SECRET_FIELDS,
    SECTIONS,
    ConnectionCheck,
    WarehouseSettings,
    load_warehouse_settings,
    stored_warehouse_settings,
    check_connections,
    update_warehouse_settings,
)

WAREHOUSE_ENV = "TRIBUTARY_WAREHOUSE"
RUNNER_ENV = "TRIBUTARY_RUNNER"
WAREHOUSE_TITLES = {
    "local": "Local (embedded DuckDB and Parquet)",
    "postgres": "PostgreSQL",
    "redshift": "Amazon Redshift",
    "snowflake": "Snowflake",
}
SECTION_TITLES = {"postgres": "PostgreSQL", "s3": "Amazon S3", "redshift": "Amazon Redshift", "snowflake": "Snowflake"}

# (label, help). A field missing here still gets a form input, labelled from its name.
FIELD_TEXT = {
    ("postgres", "url"): ("URL", "postgresql://user:password@host:5432/database"),
    ("postgres", "schema"): ("Schema", "Where the feeds' tables are created."),
    ("s3", "bucket"): ("Bucket", ""),
    ("s3", "prefix"): ("Key prefix", "Feeds' files go under this prefix in the bucket."),
    ("s3", "region"): ("Region", ""),
    ("s3", "endpoint_url"): ("Endpoint URL", "Empty for AWS; set it for an S3-compatible service."),
    ("s3", "access_key_id"): ("Access key ID",
                              "Empty: boto3's default chain (instance role, ~/.aws, AWS_* variables)."),
    ("s3", "secret_access_key"): ("Secret access key", ""),
    ("s3", "file_format"): ("File format", "How the S3 destination writes files."),
    ("redshift", "url"): ("URL", "postgresql://user:password@cluster.region.redshift.amazonaws.com:5439/dev"),
    ("redshift", "schema"): ("Schema", "Where the feeds' tables are created."),
    ("redshift", "iam_role"): ("IAM role", "The role COPY assumes to read staged files; empty: the S3 keys are used."),
    ("redshift", "staging_prefix"): ("Staging prefix", "Where loads are staged, in the S3 settings' bucket."),
    ("snowflake", "account"): ("Account", ""),
    ("snowflake", "user"): ("User", ""),
    ("snowflake", "password"): ("Password", ""),
    ("snowflake", "database"): ("Database", ""),
    ("snowflake", "schema"): ("Schema", ""),
    ("snowflake", "warehouse"): ("Warehouse", "The Snowflake virtual warehouse that runs the loads."),
    ("snowflake", "role"): ("Role", ""),
    ("snowflake", "host"): ("Host", "Empty: <account>.snowflakecomputing.com."),
    ("snowflake", "port"): ("Port", ""),
    ("snowflake", "protocol"): ("Protocol", ""),
}
CHOICES = {("s3", "file_format"): FILE_FORMATS, ("snowflake", "protocol"): ("https", "http")}
SECRET_QUERY_WORDS = ("password", "secret", "token", "key")


# ---------------------------------------------------------------- warehouse


@dataclass(frozen=True)
class WarehouseOverview:
    name: str
    title: str
    destinations: list[tuple[str, str]]  # (name, title)
    problem: str | None = None  # TRIBUTARY_WAREHOUSE names no known warehouse


def warehouse_choices() -> list[str]:
    from storage.destinations import WAREHOUSES

    return list(WAREHOUSES)


def destinations_of(warehouse: str) -> list[tuple[str, str]]:
    from storage.destinations import destination_class, destinations_for_warehouse

    return [(name, destination_class(name).title) for name in destinations_for_warehouse(warehouse)]


def warehouse_overview(settings: Settings | None = None) -> WarehouseOverview:
    settings = settings or get_settings()
    name = settings.warehouse
    try:
        destinations = destinations_of(name)
    except TributaryError as exc:
        return WarehouseOverview(name, name, [], f"{WAREHOUSE_ENV}={name}: {exc}")
    return WarehouseOverview(name, WAREHOUSE_TITLES.get(name, name), destinations)


def sections_for(warehouse: str) -> list[str]:
    """The credential sections a warehouse needs: one per destination that has settings
    (Redshift's staging uses the S3 section, which is also its S3 destination's)."""
    from storage.destinations import destinations_for_warehouse

    return [name for name in destinations_for_warehouse(warehouse) if name in SECTIONS]


@dataclass(frozen=True)
class FieldSpec:
    section: str
    name: str
    label: str
    help: str
    kind: str  # "text", "secret", "number" or "choice"
    value: object  # the form's starting value; always "" for a secret
    placeholder: str = ""
    options: tuple[str, ...] = ()
    overridden_by: str | None = None  # an environment variable that wins over the stored value


def env_name(section: str, name: str) -> str:
    return f"TRIBUTARY_{section.upper()}_{name.upper()}"


def form_fields(section: str, settings: Settings | None = None) -> list[FieldSpec]:
    """The inputs of one section's form, starting from what is stored (not from environment
    overrides: the form edits the file, and says which fields the environment overrides)."""
    part = getattr(stored_warehouse_settings(settings), section)
    specs = []
    for f in fields(part):
        value = getattr(part, f.name)
        label, help_text = FIELD_TEXT.get((section, f.name), (f.name.replace("_", " ").capitalize(), ""))
        overridden = env_name(section, f.name) if os.environ.get(env_name(section, f.name)) is not None else None
        if (section, f.name) in SECRET_FIELDS:
            keep = "Leave blank to keep the stored value." if value else ""
            specs.append(FieldSpec(section, f.name, label, " ".join(p for p in (help_text, keep) if p), "secret", "",
                                   placeholder=MASK if value else "", overridden_by=overridden))
        elif (section, f.name) in CHOICES:
            options = CHOICES[(section, f.name)]
            options = options if value in options else (value, *options)
            specs.append(FieldSpec(section, f.name, label, help_text, "choice", value, options=tuple(options),
                                   overridden_by=overridden))
        elif isinstance(value, int):
            specs.append(FieldSpec(section, f.name, label, help_text, "number", value, overridden_by=overridden))
        else:
            specs.append(FieldSpec(section, f.name, label, help_text, "text", value, overridden_by=overridden))
    return specs


def stored_url(section: str, settings: Settings | None = None) -> str | None:
    """A stored URL secret as it may be shown (password masked), to tell which server it is."""
    if (section, "url") not in SECRET_FIELDS:
        return None
    url = getattr(stored_warehouse_settings(settings), section).url
    return mask_url(url) if url else None


@dataclass(frozen=True)
class SaveOutcome:
    saved: bool
    field_problems: dict[str, str]  # field name -> message, shown under the field
    other_problems: list[str]


def save_section(section: str, values: dict, settings: Settings | None = None) -> SaveOutcome:
    """A form's submit. Blank secrets keep the stored ones (update_warehouse_settings does that)."""
    cleaned = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
    try:
        update_warehouse_settings(section, settings, **cleaned)
    except ValidationError as exc:
        by_field, other = {}, []
        names = {f"{section} {name.replace('_', ' ')}": name for name in cleaned}
        names.update({f"{section} {name}": name for name in cleaned})
        for field_label, message in exc.problems:
            if field_label in names:
                by_field[names[field_label]] = message
            else:
                other.append(f"{field_label}: {message}")
        return SaveOutcome(False, by_field, other)
    except TributaryError as exc:
        return SaveOutcome(False, {}, [str(exc)])
    return SaveOutcome(True, {}, [])


def _stored_secrets(ws: WarehouseSettings) -> list[str]:
    values = [getattr(getattr(ws, section), name) for section, name in SECRET_FIELDS]
    passwords = [_credentials(v)[1] or "" for v in values]
    return secret_strings([v for v in values + passwords if v])


def check_warehouse(warehouse: str, settings: Settings | None = None) -> list[ConnectionCheck]:
    """"Test connection": reach each destination of the warehouse with the settings in force.
    Drivers may quote a DSN in an error, so stored secrets are masked out of every message."""
    secrets = _stored_secrets(load_warehouse_settings(settings))
    results = check_connections(warehouse, settings)
    return [ConnectionCheck(r.destination, r.title, r.ok, mask(r.message, secrets)) for r in results]


# ---------------------------------------------------------------- runner


@dataclass(frozen=True)
class RunnerStatus:
    runner: str
    ok: bool
    message: str
    details: list[tuple[str, str, str]]  # (setting, value, environment variable)


SUBPROCESS_UNAFFECTED = "Feeds on the subprocess runner are not affected."


def network_can_be_cut(settings: Settings | None = None) -> bool:
    """Whether a feed set to run without network really gets none: in a container, or in the
    subprocess runner's bubblewrap sandbox (a plain child process keeps the host's network)."""
    settings = settings or get_settings()
    if settings.runner == "docker":
        return True
    if settings.runner != "subprocess":
        return False
    from runners.sandbox import isolation_status

    return isolation_status(settings).isolated


def runner_status(settings: Settings | None = None) -> RunnerStatus:
    """Whether scripts can run now. Only the docker runner has something to check: its engine
    and the runner image on it."""
    from runners import RUNNERS, get_runner

    settings = settings or get_settings()
    name = settings.runner
    if name not in RUNNERS:
        choices = ", ".join(RUNNERS)
        return RunnerStatus(name, False, f"{RUNNER_ENV}={name} names no runner; choose one of {choices}.", [])
    if name == "subprocess":
        return _sandbox_status(settings)
    if name != "docker":
        return RunnerStatus(name, True, "Scripts run as child processes of Tributary, with a scrubbed environment, "
                                        "not isolated: they can read what Tributary's user can.", [])
    details = [
        ("Runner image", settings.docker_image, "TRIBUTARY_DOCKER_IMAGE"),
        ("Network of feeds with network access", settings.docker_network, "TRIBUTARY_DOCKER_NETWORK"),
        ("CPUs per run", f"{settings.docker_cpus:g}", "TRIBUTARY_DOCKER_CPUS"),
        ("Processes per run", str(settings.docker_pids_limit), "TRIBUTARY_DOCKER_PIDS_LIMIT"),
    ]
    try:
        runner = get_runner("docker", settings)
        runner.check()
    except ImportError as exc:
        return RunnerStatus(name, False, f"The docker SDK is not installed ({exc}). {SUBPROCESS_UNAFFECTED}", details)
    except TributaryError as exc:
        message = str(exc)
        if "subprocess" not in message:
            message = f"{message.rstrip('.')}. {SUBPROCESS_UNAFFECTED}"
        return RunnerStatus(name, False, message[:1].upper() + message[1:], details)
    from runners.docker_engine import engine_address

    return RunnerStatus(name, True, f"Docker engine reachable at {engine_address()}; the runner image "
                                    f"{settings.docker_image} is present.", details)


def _sandbox_status(settings: Settings) -> RunnerStatus:
    """The `subprocess` runner: whether its bubblewrap sandbox holds here, and which limits."""
    from runners import get_runner
    from runners.sandbox import isolation_status

    status = isolation_status(settings)
    details = [
        ("Sandbox", status.how, "TRIBUTARY_SANDBOX_BWRAP"),
        ("Limits", status.limits, "TRIBUTARY_SANDBOX_PIDS_LIMIT, TRIBUTARY_SANDBOX_CPUS"),
        ("Network of feeds with network access", status.network, "TRIBUTARY_SANDBOX_NETWORK"),
        ("Work dir of a run", f"at most {settings.work_dir_limit_mb} MB", "TRIBUTARY_WORK_DIR_LIMIT_MB"),
    ]
    if status.isolated:
        note = f" ({status.problem})" if status.problem else ""
        return RunnerStatus("subprocess", True, f"Scripts run isolated: {status.how}; {status.limits}{note}.", details)
    try:
        get_runner("subprocess", settings).check()
    except TributaryError as exc:
        return RunnerStatus("subprocess", False, str(exc), details)
    return RunnerStatus("subprocess", False, f"Scripts run NOT isolated: {status.problem}. They can read what "
                                             "Tributary's user can.", details)


# ---------------------------------------------------------------- read from the environment


@dataclass(frozen=True)
class SettingRow:
    label: str
    value: str
    env: str  # where it is set


def smtp_rows(settings: Settings | None = None) -> list[SettingRow]:
    """Outgoing mail for email watchers. The password is only ever said to be set or not."""
    s = settings or get_settings()
    return [
        SettingRow("Host", s.smtp_host or "not set: email notifications cannot be sent", "TRIBUTARY_SMTP_HOST"),
        SettingRow("Port", str(s.smtp_port), "TRIBUTARY_SMTP_PORT"),
        SettingRow("From", s.smtp_from, "TRIBUTARY_SMTP_FROM"),
        SettingRow("Username", s.smtp_username or "none (no login)", "TRIBUTARY_SMTP_USERNAME"),
        SettingRow("Password", "set" if s.smtp_password else "not set", "TRIBUTARY_SMTP_PASSWORD"),
        SettingRow("STARTTLS", "on" if s.smtp_starttls else "off", "TRIBUTARY_SMTP_STARTTLS"),
    ]


def email_ready(settings: Settings | None = None) -> bool:
    return bool((settings or get_settings()).smtp_host)


def store_rows(settings: Settings | None = None) -> list[SettingRow]:
    s = settings or get_settings()
    key = "TRIBUTARY_SECRET_KEY" if os.environ.get("TRIBUTARY_SECRET_KEY") else str(s.key_file)
    return [
        SettingRow("Data dir", str(s.data_dir), "TRIBUTARY_DATA_DIR"),
        SettingRow("Store", mask_url(s.database_url), "TRIBUTARY_DATABASE_URL"),
        SettingRow("Encryption key", f"from {key}", "TRIBUTARY_SECRET_KEY"),
        SettingRow("Concurrent runs", f"at most {s.max_concurrent_runs} at a time; the others wait as queued",
                   "TRIBUTARY_MAX_CONCURRENT_RUNS"),
        SettingRow("Misfire grace", f"{s.misfire_grace_s} s: a schedule missed while Tributary was down runs "
                                    "at start-up if it is no older than this", "TRIBUTARY_MISFIRE_GRACE_S"),
        SettingRow("Run log limit", f"{s.run_log_limit_mb} MB a run: past it a log keeps its head and tail"
                   if s.run_log_limit_mb > 0 else "none", "TRIBUTARY_RUN_LOG_LIMIT_MB"),
        SettingRow("Allowed host names", ", ".join(sorted(allowed_hosts(s))), "TRIBUTARY_ALLOWED_HOSTS"),
    ]


def mask_url(url: str) -> str:
    """A URL without its secrets: the password after user: and secret query values become ****.
    Plain string surgery, not urllib: its round trip rewrites sqlite:////abs/path URLs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    before_query, question, query = rest.partition("?")
    user, password = _credentials(url)
    if password is not None:
        before_query = f"{user}:{MASK}@{before_query.rpartition('@')[2]}"
    if question:
        query = "&".join(_mask_pair(pair) for pair in query.split("&"))
    return f"{scheme}{sep}{before_query}{question}{query}"


def _credentials(url: str) -> tuple[str, str | None]:
    """(user, password) of scheme://user:password@host...; the last @ before the query ends
    them, so a password with an unencoded @ or / is still found whole."""
    _, sep, rest = url.partition("://")
    credentials, at, _ = rest.partition("?")[0].rpartition("@")
    if not sep or not at or ":" not in credentials:
        return credentials, None
    user, _, password = credentials.partition(":")
    return user, password


def _mask_pair(pair: str) -> str:
    name, eq, _ = pair.partition("=")
    return f"{name}={MASK}" if eq and any(word in name.lower() for word in SECRET_QUERY_WORDS) else pair
