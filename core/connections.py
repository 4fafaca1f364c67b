"""Connection use cases: create, list, get, edit, delete. Secrets are encrypted at rest.

A connection's secrets are the Basic Auth password and, for Custom Auth, the request
headers' values and the JSON body (they usually carry client secrets). Views of a connection
never carry them in clear: `masked_view` shows `****` in their place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlmodel import select

from common.errors import Conflict, NotFound, ValidationError
from storage.models import Connection, Feed, utcnow
from common.secrets import MASK, basic_auth_value, decrypt_json, encrypt_json, secret_strings
from core.validation import (
    AUTH_TYPES,
    connection_name_problems,
    header_problems,
    http_url_problems,
    raise_if,
    secret_problems,
)
from storage.db import session_scope

DEFAULT_TOKEN_PATH = "access_token"
DEFAULT_TOKEN_HEADER = "Authorization: Bearer <token>"


@dataclass
class ConnectionInput:
    """What a user may set. For edits, None means 'keep what is stored'."""

    username: str | None = None
    password: str | None = None
    auth_url: str | None = None
    headers: dict[str, str] | None = None
    body: dict | str | None = None  # a dict, or JSON text from an editor
    token_path: str | None = None
    token_header: str | None = None
    # lib.connection's budget and retries (rate, per, max_in_flight, retries) and how many of the
    # connection's runs may execute at once, on all workers together (max_concurrent_runs)
    limits: dict | None = None
    extra: dict = field(default_factory=dict)


def _parse_body(body) -> dict | list | None:
    if body is None or body == "":
        return None
    if isinstance(body, (dict, list)):
        return body
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValidationError.single("JSON body", f"is not valid JSON: {exc.msg} at line {exc.lineno}") from None


def _split(auth_type: str, data: ConnectionInput, params: dict, secrets: dict) -> tuple[dict, dict]:
    """Merge an input over the stored params/secrets for the auth type, then validate."""
    params, secrets = dict(params), dict(secrets)
    if auth_type == "basic":
        if data.username is not None:
            params["username"] = data.username
        if data.password is not None:
            secrets["password"] = data.password
        problems = []
        if not params.get("username"):
            problems.append(("username", "is required for Basic Auth"))
        if not secrets.get("password"):
            problems.append(("password", "is required for Basic Auth"))
        elif data.password is not None:
            problems += secret_problems("password", data.password)
        if any(c in params.get("username", "") for c in "\r\n:"):
            problems.append(("username", "must not contain a colon or a line break"))
        raise_if(problems)
    elif auth_type == "custom":
        for name in ("auth_url", "token_path", "token_header"):
            if getattr(data, name) is not None:
                params[name] = getattr(data, name).strip()
        if data.headers is not None:
            secrets["headers"] = {k.strip(): str(v) for k, v in data.headers.items() if k.strip()}
        if data.body is not None:
            secrets["body"] = _parse_body(data.body)
        params.setdefault("token_path", DEFAULT_TOKEN_PATH)
        params.setdefault("token_header", DEFAULT_TOKEN_HEADER)
        params["token_path"] = params["token_path"] or DEFAULT_TOKEN_PATH
        params["token_header"] = params["token_header"] or DEFAULT_TOKEN_HEADER
        problems = http_url_problems("authorization URL", params.get("auth_url") or "")
        if data.headers is not None:
            problems += header_problems(secrets["headers"])
        header = params["token_header"]
        name, colon, value = header.partition(":")
        if not colon or ("<token>" not in value and "{token}" not in value):
            problems.append(("token header", "must look like 'Header-Name: value with <token>'"))
        else:
            problems += [("token header", message) for _, message in header_problems({name.strip(): value}, secret=False)]
        raise_if(problems)
    if data.limits is not None:
        params["limits"] = checked_limits(data.limits)
    params["header_names"] = sorted((secrets.get("headers") or {}).keys())
    return params, secrets


LIMIT_PERIODS = ("second", "minute", "hour", "day")


RUNS_AT_ONCE_MAX = 256


def checked_limits(limits: dict) -> dict:
    """A connection's request budget and retries, as lib.connection.configure() takes them,
    and its runs at once (the dispatcher's cap); a rate, max in flight or runs at once of 0
    (or none) means no limit."""
    problems, out = [], {}
    rate, per = limits.get("rate"), limits.get("per") or "second"
    if rate not in (None, 0, ""):
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate <= 100_000:
            problems.append(("requests per period", "must be a number above 0 and at most 100,000 (0: no limit)"))
        else:
            out["rate"] = rate
    if per not in LIMIT_PERIODS:
        problems.append(("period", f"must be one of {', '.join(LIMIT_PERIODS)}"))
    elif "rate" in out:
        out["per"] = per
    in_flight = limits.get("max_in_flight")
    if in_flight not in (None, 0, ""):
        if not isinstance(in_flight, int) or isinstance(in_flight, bool) or not 0 < in_flight <= 256:
            problems.append(("requests at once", "must be a whole number from 1 to 256 (0: no limit)"))
        else:
            out["max_in_flight"] = in_flight
    runs = limits.get("max_concurrent_runs")
    if runs not in (None, 0, ""):
        if not isinstance(runs, int) or isinstance(runs, bool) or not 0 < runs <= RUNS_AT_ONCE_MAX:
            problems.append(("runs at once", f"must be a whole number from 1 to {RUNS_AT_ONCE_MAX} (0: no limit)"))
        else:
            out["max_concurrent_runs"] = runs
    retries = limits.get("retries", 5)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 20:
        problems.append(("retries", "must be a whole number from 0 to 20"))
    else:
        out["retries"] = retries
    raise_if(problems)
    return out


def _get(session, name: str) -> Connection:
    conn = session.exec(select(Connection).where(Connection.name == name)).first()
    if conn is None:
        raise NotFound(f"connection {name!r} does not exist")
    return conn


def create_connection(name: str, auth_type: str, data: ConnectionInput | None = None) -> Connection:
    problems = connection_name_problems(name)
    if auth_type not in AUTH_TYPES:
        problems.append(("authentication type", f"must be one of {', '.join(AUTH_TYPES)} (got {auth_type!r})"))
    raise_if(problems)
    params, secrets = _split(auth_type, data or ConnectionInput(), {}, {})
    with session_scope() as session:
        if session.exec(select(Connection).where(Connection.name == name)).first():
            raise Conflict(f"connection name: {name!r} is already taken")
        conn = Connection(name=name, auth_type=auth_type, params=params,
                          secrets_encrypted=encrypt_json(secrets) if secrets else None)
        session.add(conn)
        session.flush()
        return conn


def edit_connection(name: str, data: ConnectionInput, new_name: str | None = None,
                    new_auth_type: str | None = None) -> Connection:
    with session_scope() as session:
        conn = _get(session, name)
        if new_name is not None and new_name != conn.name:
            raise ValidationError.single("connection name", "cannot be changed after the connection is created")
        if new_auth_type is not None and new_auth_type != conn.auth_type:
            raise ValidationError.single("authentication type", "cannot be changed after the connection is created")
        params, secrets = _split(conn.auth_type, data, conn.params, decrypt_json(conn.secrets_encrypted))
        conn.params = params
        conn.secrets_encrypted = encrypt_json(secrets) if secrets else None
        conn.updated_at = utcnow()
        session.add(conn)
        return conn


def delete_connection(name: str) -> None:
    with session_scope() as session:
        conn = _get(session, name)
        users = session.exec(select(Feed.name).where(Feed.connection_id == conn.id)).all()
        if users:
            raise Conflict(f"connection {name!r} is used by feeds: {', '.join(sorted(users))}; "
                           "change or delete them first")
        session.delete(conn)


def list_connections() -> list[Connection]:
    with session_scope() as session:
        return list(session.exec(select(Connection).order_by(Connection.name)).all())


def get_connection(name: str) -> Connection:
    with session_scope() as session:
        return _get(session, name)


def get_connection_by_id(connection_id: int) -> Connection:
    with session_scope() as session:
        conn = session.get(Connection, connection_id)
        if conn is None:
            raise NotFound(f"connection #{connection_id} does not exist")
        return conn


def runs_at_once(params: dict | None) -> int | None:
    """How many of a connection's runs may execute at once (None: no cap), from its params."""
    return ((params or {}).get("limits") or {}).get("max_concurrent_runs") or None


def sandbox_material(conn: Connection | None) -> tuple[dict | None, list[str]]:
    """What the sandbox needs for lib.connection, and the strings to mask in its output."""
    if conn is None:
        return None, []
    secrets = decrypt_json(conn.secrets_encrypted)
    material = {"auth_type": conn.auth_type, "params": conn.params, "secrets": secrets}
    extra = []
    if conn.auth_type == "basic" and secrets.get("password"):
        # requests sends base64("user:password"): a script printing its request headers shows it.
        extra.append(basic_auth_value(conn.params.get("username", ""), secrets["password"]))
    return material, secret_strings(secrets, *extra)


def masked_view(conn: Connection) -> dict:
    """A connection as the UI and the CLI show it: secrets replaced by ****."""
    secrets = decrypt_json(conn.secrets_encrypted)
    view = {"name": conn.name, "auth_type": conn.auth_type, "auth_type_label": AUTH_TYPES[conn.auth_type]}
    params = {k: v for k, v in conn.params.items() if k != "header_names"}
    view.update(params)
    if conn.auth_type == "basic":
        view["password"] = MASK if secrets.get("password") else ""
    if conn.auth_type == "custom":
        view["headers"] = {k: MASK for k in (secrets.get("headers") or {})}
        view["body"] = MASK if secrets.get("body") is not None else None
    view["created_at"] = conn.created_at.isoformat()
    view["updated_at"] = conn.updated_at.isoformat()
    return view
