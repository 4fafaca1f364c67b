"""What the command line reads: arguments given inline, as @file or as - (standard input),
JSON options, and connection options checked against the auth type. Every problem is a
ValidationError naming the option, so that it ends as exit 2 with `error: <field>: <rule>`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common.errors import ValidationError
from core import connections as connections_service
from core.validation import AUTH_TYPES

# The connection options each auth type uses (their parameter names); No Auth uses none.
AUTH_OPTIONS = {
    "none": (),
    "basic": ("username", "password", "password_stdin"),
    "custom": ("auth_url", "header", "body", "token_path", "token_header"),
}


# The connection options every auth type uses: its limits (the names in its params["limits"]).
LIMIT_OPTIONS = {"runs_at_once": "max_concurrent_runs"}


def option_name(param: str) -> str:
    return "--" + param.replace("_", "-")


def read_file(path: str, field: str) -> str:
    """A UTF-8 text file's contents; a problem with `field` when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError.single(field, f"{path!r} does not exist") from None
    except IsADirectoryError:
        raise ValidationError.single(field, f"{path!r} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise ValidationError.single(field, f"{path!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ValidationError.single(field, f"{path!r} cannot be read: {exc.strerror}") from None


def read_text(value: str, field: str) -> str:
    """An argument given inline, as @file, or as - for standard input."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        return read_file(value[1:], field)
    return value


def _json(text: str, field: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError.single(
            field, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def json_object(text: str, field: str) -> dict:
    """JSON text that must hold an object."""
    value = _json(text, field)
    if not isinstance(value, dict):
        raise ValidationError.single(field, f"must be a JSON object, not {_kind(value)}")
    return value


def _kind(value) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def headers(pairs: tuple[str, ...]) -> dict | None:
    if not pairs:
        return None
    result = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValidationError.single("--header", f"{pair!r} must look like Name=value")
        key, _, value = pair.partition("=")
        result[key.strip()] = value
    return result


def check_auth_options(auth_type: str, given: dict) -> None:
    """Refuse the connection options the auth type does not use (they would be dropped)."""
    fitting = AUTH_OPTIONS.get(auth_type, ())
    label = AUTH_TYPES.get(auth_type, auth_type)
    problems = []
    for param, value in given.items():
        if value in (None, False, ()) or param in fitting or param in LIMIT_OPTIONS:
            continue
        owners = [AUTH_TYPES[t] for t, params in AUTH_OPTIONS.items() if param in params]
        problems.append((option_name(param),
                         f"does not apply to {label}; it is for {' and '.join(owners)}"))
    if given.get("password") is not None and given.get("password_stdin"):
        problems.append(("--password", "give either --password or --password-stdin, not both"))
    if problems:
        raise ValidationError(problems)


def connection_input(given: dict, stored_limits: dict | None = None) -> connections_service.ConnectionInput:
    """What the options give; the limits given are set over `stored_limits` (an edit keeps
    the limits it does not name)."""
    password = given.get("password")
    if given.get("password_stdin"):
        password = sys.stdin.readline().rstrip("\n")
    body = given.get("body")
    return connections_service.ConnectionInput(
        username=given.get("username"), password=password, auth_url=given.get("auth_url"),
        headers=headers(given.get("header") or ()), body=read_text(body, "--body") if body is not None else None,
        token_path=given.get("token_path"), token_header=given.get("token_header"),
        limits=limits_input(given, stored_limits or {}),
    )


def limits_input(given: dict, stored: dict) -> dict | None:
    """The connection's limits with the options given set over the stored ones (None: none given)."""
    named = {key: given[option] for option, key in LIMIT_OPTIONS.items() if given.get(option) is not None}
    return {**stored, **named} if named else None
