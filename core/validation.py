"""The naming and input rules of Peak's REST API connector, one message per broken rule.

Each check returns a list of (field, message) so that a form can show every problem at once
and the CLI can print them all; services raise ValidationError when the list is not empty.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from common.errors import ValidationError
from storage.destinations.base import SCHEMA_POLICIES

NAME_MAX = 50
MIN_SECRET_LENGTH = 4  # a connection's password, a header value: shorter ones cannot be masked
LOAD_TYPES = {
    "incremental": "Incremental",
    "truncate_insert": "Truncate and Insert",
    "upsert": "Upsert",
}
# Names the destinations use for their own tables and columns (storage/destinations/base.py).
REJECTS_SUFFIX = "__rejected"
RESERVED_PREFIX = "_tributary"
AUTH_TYPES = {"none": "No Auth", "basic": "Basic Auth", "custom": "Custom Auth"}

QUEUE_MAX = 64
_QUEUE_CHARS = re.compile(r"^[A-Za-z0-9_.-]+$")
_CONNECTION_CHARS = re.compile(r"^[A-Za-z0-9_]+$")
_FEED_CHARS = re.compile(r"^[A-Za-z0-9_]+$")
# Column names a primary key may use: what the loader can quote safely in every warehouse.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ \-]{0,127}$")


def connection_name_problems(name: str) -> list[tuple[str, str]]:
    field = "connection name"
    if not name:
        return [(field, "is required (1-50 letters, digits and underscores)")]
    problems = []
    if not _CONNECTION_CHARS.match(name):
        problems.append((field, "may contain only letters, digits and underscores (A-Z, a-z, 0-9, _)"))
    if len(name) > NAME_MAX:
        problems.append((field, f"must be at most {NAME_MAX} characters (got {len(name)})"))
    return problems


def feed_name_problems(name: str) -> list[tuple[str, str]]:
    """Peak's feed-name rules; together they make the name a safe table identifier."""
    field = "feed name"
    if not name:
        return [(field, "is required")]
    problems = []
    if not _FEED_CHARS.match(name):
        problems.append((field, "may contain only letters, digits and underscores"))
    if not name[0].isascii() or not name[0].isalpha():
        problems.append((field, "must start with a letter"))
    if name.endswith("_"):
        problems.append((field, "must not end with an underscore"))
    if len(name) > NAME_MAX:
        problems.append((field, f"must be at most {NAME_MAX} characters (got {len(name)})"))
    if name.lower().endswith(REJECTS_SUFFIX):
        problems.append((field, f"must not end with {REJECTS_SUFFIX!r}: that suffix names a feed's table of rejected rows"))
    if name.lower().startswith(RESERVED_PREFIX):
        problems.append((field, f"must not start with {RESERVED_PREFIX!r}: Tributary's own tables and columns do"))
    return problems


def queue_problems(queue: str | None, field: str = "queue") -> list[tuple[str, str]]:
    """A queue's name, when one is given: what Celery and every broker accept as a name."""
    if not queue:
        return []
    problems = []
    if not _QUEUE_CHARS.match(queue):
        problems.append((field, f"{queue!r} may contain only letters, digits, '-', '_' and '.'"))
    if len(queue) > QUEUE_MAX:
        problems.append((field, f"must be at most {QUEUE_MAX} characters (got {len(queue)})"))
    return problems


TIMEOUT_RANGE_S = (1, 86400)
MEMORY_RANGE_MB = (64, 65536)


def limit_problems(timeout_s, memory_limit_mb) -> list[tuple[str, str]]:
    """A feed's own limits, when set: 1 s to a day, and 64 MB to 64 GB."""
    return (range_problems("timeout", timeout_s, *TIMEOUT_RANGE_S, "seconds")
            + range_problems("memory limit", memory_limit_mb, *MEMORY_RANGE_MB, "MB"))


def dependency_problems(dependencies: list[str]) -> list[tuple[str, str]]:
    """Requirement specifiers as pip understands them; pip options are refused (no -i, -e...)."""
    if not dependencies:
        return []
    # Imported here: most feeds have no dependencies, and every command would pay for it.
    from packaging.requirements import InvalidRequirement, Requirement

    problems = []
    for dep in dependencies:
        text = dep.strip()
        if not text:
            problems.append(("dependencies", "an empty entry is not a package"))
            continue
        if text.startswith("-"):
            problems.append(("dependencies", f"{text!r}: pip options are not allowed, only package specifiers"))
            continue
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            problems.append(("dependencies", f"{text!r} is not a package pip can install: write a package name, "
                             "optionally with a version, e.g. requests or requests>=2.31 or pandas==2.2.*"))
    return problems


def schema_policy_problems(policy: str) -> list[tuple[str, str]]:
    """A feed's schema policy: what a run whose records do not fit its table does (see
    storage/destinations/base.py SCHEMA_POLICIES)."""
    if policy in SCHEMA_POLICIES:
        return []
    return [("schema policy", f"must be one of {', '.join(SCHEMA_POLICIES)} (got {policy!r})")]


def load_type_problems(load_type: str, primary_key: list[str]) -> list[tuple[str, str]]:
    if load_type not in LOAD_TYPES:
        choices = ", ".join(LOAD_TYPES)
        return [("load type", f"must be one of {choices} (got {load_type!r})")]
    problems = []
    if load_type == "upsert" and not primary_key:
        problems.append(("primary key", "is required for Upsert: name one or more fields"))
    if load_type != "upsert" and primary_key:
        problems.append(("primary key", "is only used by Upsert; leave it empty for this load type"))
    for key in primary_key:
        if not _FIELD_NAME.match(key):
            problems.append(("primary key", f"{key!r} is not a usable field name"))
        elif key.lower().startswith(RESERVED_PREFIX):
            problems.append(("primary key", f"{key!r}: names starting with {RESERVED_PREFIX!r} are Tributary's own columns"))
    if len(set(primary_key)) != len(primary_key):
        problems.append(("primary key", "lists a field twice"))
    return problems


def secret_problems(field: str, value: str | None) -> list[tuple[str, str]]:
    """A secret too short to mask: masking 'abc' in a log would hide every 'abc' and reveal
    nothing useful, so a secret shorter than MIN_SECRET_LENGTH is refused."""
    if value and len(value) < MIN_SECRET_LENGTH:
        return [(field, f"at least {MIN_SECRET_LENGTH} characters, so that logs can mask it")]
    return []


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)


def header_problems(headers: dict[str, str], secret: bool = True) -> list[tuple[str, str]]:
    """Request header names and values: a name is an HTTP token, and neither carries a line
    break (CR/LF would let a value smuggle further headers). Values are secrets when `secret`."""
    problems = []
    for name, value in headers.items():
        field = f"header {name!r}"
        if any(c in name for c in "\r\n"):
            problems.append(("headers", f"{name!r}: a header name must not contain a line break (CR or LF)"))
        elif not _HEADER_NAME.match(name):
            problems.append(("headers", f"{name!r} is not a header name (letters, digits and - only; no spaces or colons)"))
        if any(c in str(value) for c in "\r\n\0"):
            problems.append((field, "the value must not contain a line break (CR or LF) or a NUL character"))
        if secret:
            problems += secret_problems(field, str(value))
    return problems


def http_url_problems(field: str, url: str) -> list[tuple[str, str]]:
    """An absolute http(s) URL with a host, and no whitespace or line breaks."""
    if not url:
        return [(field, "is required and must start with http:// or https://")]
    if any(c.isspace() for c in url):
        return [(field, "must not contain spaces or line breaks")]
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError as exc:
        return [(field, f"is not a valid URL ({exc})")]
    if parts.scheme not in ("http", "https") or not url.lower().startswith(("http://", "https://")):
        return [(field, "is required and must start with http:// or https://")]
    if not parts.hostname:
        return [(field, "must name a host, e.g. https://auth.example.com/token")]
    if not port_ok:
        return [(field, "has a port out of range (1-65535)")]
    return []


def range_problems(field: str, value, low: int, high: int, unit: str) -> list[tuple[str, str]]:
    """A whole number within [low, high]; None means 'the default' and is fine."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int):
        return [(field, f"must be a whole number of {unit} between {low} and {high} (got {value!r})")]
    if not low <= value <= high:
        return [(field, f"must be between {low} and {high} {unit} (got {value})")]
    return []


def raise_if(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise ValidationError(problems)
