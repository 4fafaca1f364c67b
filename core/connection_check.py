"""Whether a saved connection works, and which feeds use it.

"Test connection" makes the one call a connection's auth type allows without a script:
No Auth and Basic Auth, a GET to a URL the user gives (with the Basic Auth credentials);
Custom Auth, the token call to its authorization URL (a POST of its JSON body with its
headers), reporting whether the response holds a token at the token path. What comes back
says the status and never a secret: no credentials, no token, no response body.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from sqlmodel import select

from common.errors import ValidationError
from common.secrets import mask
from core.connections import DEFAULT_TOKEN_PATH, get_connection, sandbox_material
from storage.db import session_scope
from storage.models import Connection, Feed

TIMEOUT_S = 10


@dataclass
class CheckResult:
    ok: bool
    summary: str  # one line for the user, secrets masked
    status_code: int | None = None
    token_found: bool | None = None  # Custom Auth only


def feeds_using(name: str) -> list[str]:
    """The names of the feeds that use the connection, sorted."""
    with session_scope() as session:
        conn = session.exec(select(Connection).where(Connection.name == name)).first()
        if conn is None:
            return []
        return sorted(session.exec(select(Feed.name).where(Feed.connection_id == conn.id)).all())


def feeds_by_connection() -> dict[str, list[str]]:
    """Every connection's name with the feeds that use it (one query, for a list page)."""
    with session_scope() as session:
        rows = session.exec(select(Connection.name, Feed.name).join(Feed, Feed.connection_id == Connection.id)).all()
    used: dict[str, list[str]] = {}
    for conn_name, feed_name in rows:
        used.setdefault(conn_name, []).append(feed_name)
    return {name: sorted(feeds) for name, feeds in used.items()}


def needs_url(auth_type: str) -> bool:
    """No Auth and Basic Auth are tried on a URL of the user's API; Custom Auth on its own."""
    return auth_type != "custom"


def check_connection(name: str, url: str | None = None, timeout_s: float = TIMEOUT_S) -> CheckResult:
    material, secrets = sandbox_material(get_connection(name))
    auth_type, params, stored = material["auth_type"], material["params"], material["secrets"]
    try:
        if auth_type == "custom":
            return _token_call(params, stored, timeout_s)
        url = (url or "").strip()
        if not url.startswith(("http://", "https://")):
            raise ValidationError.single("URL", "is required and must start with http:// or https://")
        auth = (params.get("username", ""), stored.get("password", "")) if auth_type == "basic" else None
        response = requests.get(url, auth=auth, timeout=timeout_s)
        return CheckResult(response.ok, f"GET {mask(url, secrets)} answered {_status(response)}",
                           response.status_code)
    except requests.RequestException as exc:
        return CheckResult(False, f"the call did not get an answer: {mask(_reason(exc, timeout_s), secrets)}")


def _token_call(params: dict, stored: dict, timeout_s: float) -> CheckResult:
    auth_url = params.get("auth_url", "")
    response = requests.post(auth_url, headers=stored.get("headers") or {}, json=stored.get("body"),
                             timeout=timeout_s)
    path = params.get("token_path") or DEFAULT_TOKEN_PATH
    found = response.ok and _has_value(response, path)
    where = f"a token at {path!r}" if found else f"no token at {path!r}"
    return CheckResult(response.ok and found, f"POST {auth_url} answered {_status(response)}, with {where}",
                       response.status_code, found)


def _has_value(response: requests.Response, path: str) -> bool:
    """Whether the JSON answer holds a value at the dotted path, as lib.connection reads it."""
    try:
        current = response.json()
    except ValueError:
        return False
    for part in path.split("."):
        key = int(part) if isinstance(current, list) and part.isdigit() else part
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            return False
    return current not in (None, "")


def _status(response: requests.Response) -> str:
    return f"{response.status_code} {response.reason}".strip()


def _reason(exc: requests.RequestException, timeout_s: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout_s:g} s"
    return f"{type(exc).__name__}: {exc}"
