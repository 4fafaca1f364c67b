"""Encryption at rest for connection secrets, and masking of secrets in text shown to users.

The Fernet key comes from TRIBUTARY_SECRET_KEY, or is generated once into the data dir with
mode 0600 so that an embedded set-up needs no configuration and the key never sits in the store.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

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


def secret_strings(value) -> list[str]:
    """Every string inside a secrets structure, longest first, for masking."""
    found: list[str] = []

    def walk(item):
        if isinstance(item, dict):
            for sub in item.values():
                walk(sub)
        elif isinstance(item, list):
            for sub in item:
                walk(sub)
        elif isinstance(item, str) and len(item) >= 3:
            found.append(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and len(str(item)) >= 4:
            found.append(str(item))

    walk(value)
    return sorted(set(found), key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text
