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

from common.passwords import verify_password

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
    """Slows down guessing: after `free` wrong passwords in a row, each further attempt must
    wait, twice as long each time (capped). Shared by every session of the process."""

    def __init__(self, free: int = 5, base_delay_s: float = 2.0, max_delay_s: float = 300.0):
        self.free, self.base_delay_s, self.max_delay_s = free, base_delay_s, max_delay_s
        self._failures = 0
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def wait_s(self) -> float:
        with self._lock:
            return max(0.0, self._blocked_until - time.monotonic())

    def check(self, password: str, encoded: str) -> bool:
        with self._lock:
            if time.monotonic() < self._blocked_until:
                return False
        ok = verify_password(password, encoded)
        with self._lock:
            if ok:
                self._failures = 0
                return True
            self._failures += 1
            if self._failures > self.free:
                delay = min(self.max_delay_s, self.base_delay_s * 2 ** (self._failures - self.free - 1))
                self._blocked_until = time.monotonic() + delay
            return False


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
