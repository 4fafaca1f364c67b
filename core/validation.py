"""The naming and input rules of Peak's REST API connector, one message per broken rule.

Each check returns a list of (field, message) so that a form can show every problem at once
and the CLI can print them all; services raise ValidationError when the list is not empty.
"""

from __future__ import annotations

import re


from common.errors import ValidationError

NAME_MAX = 50
LOAD_TYPES = {
    "incremental": "Incremental",
    "truncate_insert": "Truncate and Insert",
    "upsert": "Upsert",
}
AUTH_TYPES = {"none": "No Auth", "basic": "Basic Auth", "custom": "Custom Auth"}

_ALNUM = re.compile(r"^[A-Za-z0-9]+$")
_FEED_CHARS = re.compile(r"^[A-Za-z0-9_]+$")
# Column names a primary key may use: what the loader can quote safely in every warehouse.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ \-]{0,127}$")


def connection_name_problems(name: str) -> list[tuple[str, str]]:
    field = "connection name"
    if not name:
        return [(field, "is required (1-50 alphanumeric characters)")]
    problems = []
    if not _ALNUM.match(name):
        problems.append((field, "may contain only letters and digits (A-Z, a-z, 0-9)"))
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
    return problems


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
            problems.append(("dependencies", f"{text!r} is not a valid requirement specifier ({exc})"))
    return problems


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
    if len(set(primary_key)) != len(primary_key):
        problems.append(("primary key", "lists a field twice"))
    return problems


def raise_if(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise ValidationError(problems)
