"""Encryption at rest for connection secrets, and masking of secrets in text shown to users.

The Fernet key comes from TRIBUTARY_SECRET_KEY, or is generated once into the data dir with
mode 0600 so that an embedded set-up needs no configuration and the key never sits in the store.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, quote_plus

from cryptography.fernet import Fernet, InvalidToken

from common.errors import TributaryError
from common.settings import get_settings

MASK = "****"


def _load_or_create_key(key_file: Path) -> bytes:
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


@lru_cache(maxsize=8)
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def current_fernet() -> Fernet:
    env_key = os.environ.get("TRIBUTARY_SECRET_KEY")
    key = env_key.encode() if env_key else _load_or_create_key(get_settings().key_file)
    return _fernet(key)


def encrypt_json(value: dict) -> str:
    return current_fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str | None) -> dict:
    if not token:
        return {}
    try:
        return json.loads(current_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise TributaryError(
            "stored secrets cannot be decrypted: the encryption key changed "
            "(TRIBUTARY_SECRET_KEY or data/secret.key)"
        ) from exc


def secret_forms(secret: str) -> set[str]:
    """A secret and the forms it travels in, each of which a log must not show: URL-encoded
    (a query string, a form body) and base64 (standard and URL-safe, padded or not)."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    raw = secret.encode("utf-8")
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms.update((text, text.rstrip("=")))
    return {form for form in forms if form}


def basic_auth_value(username: str, password: str) -> str:
    """What an Authorization header carries for Basic Auth: base64("username:password")."""
    return base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")


def secret_strings(value, *extra: str) -> list[str]:
    """Every string inside a secrets structure (and `extra`, e.g. a Basic Authorization value),
    with its derived forms (secret_forms), longest first, for masking."""
    found: set[str] = set()

    def walk(item):
        if isinstance(item, dict):
            for sub in item.values():
                walk(sub)
        elif isinstance(item, list):
            for sub in item:
                walk(sub)
        elif isinstance(item, str) and len(item) >= 3:
            found.update(secret_forms(item))
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and len(str(item)) >= 4:
            found.add(str(item))

    walk(value)
    for item in extra:
        if item:
            found.update(secret_forms(item))
    return sorted(found, key=len, reverse=True)


class Masker:
    """The secrets of one run, masked in every line: those known at the start, and those
    learnt while it runs (learn_secret, e.g. a token obtained from an authorization URL)."""

    def __init__(self, secrets: list[str] | tuple[str, ...] = ()):
        self._secrets: list[str] = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._lock = threading.Lock()

    @property
    def secrets(self) -> list[str]:
        return list(self._secrets)

    def learn_secret(self, value: str) -> None:
        """Mask `value` (and its derived forms) in everything from now on."""
        if not value:
            return
        with self._lock:
            self._secrets = sorted(set(self._secrets) | secret_forms(value), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        return mask(text, self._secrets)


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text
