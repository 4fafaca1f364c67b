"""Who may use Tributary.

Three modes, chosen from the configuration:
- "oidc": Streamlit's st.login, when an [auth] section is configured in secrets.toml;
- "password": a shared team password, when its hash is set in secrets ([access] password_hash)
  or in the environment (TRIBUTARY_PASSWORD_HASH);
- "local": neither. Then only this computer may connect: the server refuses every client that
  is not on a loopback address (LocalOnlyMiddleware), whatever address it was bound to.

Make a password hash with `python -m core.cli hash-password`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from common.passwords import verify_password
from common.settings import get_settings

MODE_OIDC, MODE_PASSWORD, MODE_LOCAL = "oidc", "password", "local"
PASSWORD_HASH_ENV = "TRIBUTARY_PASSWORD_HASH"
LOCAL_ONLY_MESSAGE = (
    "Tributary has no login configured, so it only serves this computer. "
    "Configure an OIDC login or a team password to share it (see the README)."
)



def current_secrets() -> dict:
    """secrets.toml as a plain dict ({} when there is none). Works in a script run and in the
    server's middleware alike."""
    import streamlit as st

    try:
        return st.secrets.to_dict()
    except Exception:  # noqa: BLE001 - no secrets file is a normal, unconfigured set-up
        return {}


def oidc_configured(secrets_: Mapping) -> bool:
    auth = secrets_.get("auth") or {}
    if not isinstance(auth, Mapping) or not auth.get("redirect_uri") or not auth.get("cookie_secret"):
        return False
    if auth.get("client_id"):
        return True
    return any(isinstance(v, Mapping) and v.get("client_id") for v in auth.values())


def oidc_provider(secrets_: Mapping) -> str | None:
    """The named provider to log in with ([auth.<name>]), or None for the default [auth]."""
    auth = secrets_.get("auth") or {}
    if auth.get("client_id"):
        return None
    return next((name for name, v in auth.items() if isinstance(v, Mapping) and v.get("client_id")), None)


def password_hash_setting(secrets_: Mapping) -> str | None:
    section = secrets_.get("access") or {}
    configured = section.get("password_hash") if isinstance(section, Mapping) else None
    return configured or os.environ.get(PASSWORD_HASH_ENV) or None


def access_mode(secrets_: Mapping | None = None) -> str:
    secrets_ = current_secrets() if secrets_ is None else secrets_
    if oidc_configured(secrets_):
        return MODE_OIDC
    if password_hash_setting(secrets_):
        return MODE_PASSWORD
    return MODE_LOCAL


class PasswordThrottle:
    """Slows down guessing: after `free` wrong passwords in a row from one client address,
    each further attempt from that address must wait, twice as long each time (capped). Other
    addresses are not affected: one client's failures never lock out another. Shared by every
    session of the process; at most `max_clients` addresses are remembered (the oldest
    unblocked ones are forgotten first)."""

    def __init__(self, free: int = 5, base_delay_s: float = 2.0, max_delay_s: float = 300.0,
                 max_clients: int = 10_000):
        self.free, self.base_delay_s, self.max_delay_s = free, base_delay_s, max_delay_s
        self.max_clients = max_clients
        self._clients: dict[str, list] = {}  # address -> [failures in a row, blocked until]
        self._lock = threading.Lock()

    def wait_s(self, client: str | None = None) -> float:
        with self._lock:
            entry = self._clients.get(client or "")
            return max(0.0, entry[1] - time.monotonic()) if entry else 0.0

    def check(self, password: str, encoded: str, client: str | None = None) -> bool:
        key = client or ""
        if self.wait_s(key) > 0:
            return False
        ok = verify_password(password, encoded)
        with self._lock:
            if ok:
                self._clients.pop(key, None)
                return True
            entry = self._clients.setdefault(key, [0, 0.0])
            entry[0] += 1
            if entry[0] > self.free:
                delay = min(self.max_delay_s, self.base_delay_s * 2 ** min(entry[0] - self.free - 1, 32))
                entry[1] = time.monotonic() + delay
            self._forget_some()
            return False

    def _forget_some(self) -> None:
        if len(self._clients) <= self.max_clients:
            return
        now = time.monotonic()
        for key in [k for k, (_, until) in self._clients.items() if until <= now]:
            del self._clients[key]
            if len(self._clients) <= self.max_clients:
                return
        while len(self._clients) > self.max_clients:  # all blocked: drop the oldest entries
            del self._clients[next(iter(self._clients))]


password_throttle = PasswordThrottle()


# ---------------------------------------------------------------- local-only serving


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


class LocalOnlyMiddleware:
    """ASGI middleware: with no login configured, answer loopback clients only (HTTP and the
    app's websocket alike). A configured login lifts the restriction at once."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if not is_loopback(client[0] if client else None) and access_mode() == MODE_LOCAL:
                await self._refuse(scope, send)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope, send):
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "local access only"})
            return
        body = json.dumps({"error": LOCAL_ONLY_MESSAGE}).encode("utf-8")
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- allowed host names

ALLOWED_HOSTS_ENV = "TRIBUTARY_ALLOWED_HOSTS"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(settings=None) -> set[str]:
    """The names a request may be addressed to: loopback, the host of TRIBUTARY_PUBLIC_URL,
    and TRIBUTARY_ALLOWED_HOSTS ("*" there allows any name)."""
    settings = settings or get_settings()
    # An entry may carry a port or brackets ("feeds.example.com:8443", "[fd00::5]"): its name counts.
    names = set(LOOPBACK_NAMES) | {h if h == "*" else host_name(h) or h for h in settings.allowed_hosts}
    public = urlsplit(settings.public_url).hostname
    if public:
        names.add(public.lower())
    return names


def host_name(value: str | None) -> str | None:
    """The name in a Host header value ("example.com:8501", "[::1]:8501" -> "::1"), lower case;
    None when it is not a well-formed host."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name or None
    name, colon, port = value.partition(":")
    if colon and not port.isdigit():
        return None  # a bare IPv6 address, or junk: a browser always brackets IPv6 hosts
    name = name.rstrip(".")
    return name if name and not any(c in name for c in "/\\@ \t") else None


def origin_host(value: str) -> str | None:
    """The host named by an Origin header ("https://example.com:8501"); None for "null" or junk."""
    try:
        parts = urlsplit(value.strip())
        return (parts.hostname or "").rstrip(".") or None if parts.scheme in ("http", "https") else None
    except ValueError:
        return None


def host_problem(headers: Mapping[str, str], allowed: set[str]) -> str | None:
    """Why a request's Host or Origin is not allowed, or None when both are fine."""
    if "*" in allowed:
        return None
    host = host_name(headers.get("host"))
    if host not in allowed:
        return f"the host {headers.get('host', '')!r} is not allowed"
    origin = headers.get("origin")
    if origin is not None and origin_host(origin) not in allowed:
        return f"the origin {origin!r} is not allowed"
    return None


class AllowedHostsMiddleware:
    """ASGI middleware: refuse (403) every request, page, websocket or /api route, whose Host
    header, or Origin header when there is one, names a host that is not allowed. A web page
    of another site then cannot use the app through the user's browser, even by pointing its
    own DNS name at this computer (DNS rebinding)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
            problem = host_problem(headers, allowed_hosts())
            if problem is not None:
                await _refuse_host(scope, send, problem)
                return
        await self.app(scope, receive, send)


async def _refuse_host(scope, send, problem: str) -> None:
    body = (f"403 Forbidden: {problem}. Add the host name to {ALLOWED_HOSTS_ENV} "
            f"(comma-separated) or set TRIBUTARY_PUBLIC_URL to the address users open.\n").encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if scope["type"] == "websocket":
        if "websocket.http.response" not in (scope.get("extensions") or {}):
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
            return
        prefix = "websocket."
    else:
        prefix = ""
    await send({"type": f"{prefix}http.response.start", "status": 403, "headers": headers})
    await send({"type": f"{prefix}http.response.body", "body": body})
