"""Read-only helpers for editing a Custom Auth connection's secrets one field at a time: the
names of its body's fields (never their values), and a header or body edit merged over what is
stored, for core.connections.edit_connection to save. Nothing here writes."""

from __future__ import annotations

from common.secrets import decrypt_json
from core.connections import get_connection

KEEP = None  # a field whose stored value stays


def body_fields(name: str) -> list[str] | None:
    """The top-level field names of the stored JSON body; None when the body is not an object
    (an array, or no body), which can only be replaced whole."""
    body = decrypt_json(get_connection(name).secrets_encrypted).get("body")
    return list(body) if isinstance(body, dict) else None


def merged_over_stored(name: str, headers: dict[str, str | None] | None,
                       body: dict[str, object] | None) -> tuple[dict | None, dict | None]:
    """The full headers and body to save: each field given KEEP takes its stored value, a field
    left out is removed, the others are the new values. None (for all headers, or the body)
    keeps it all as stored."""
    secrets = decrypt_json(get_connection(name).secrets_encrypted)

    def merge(edited, stored):
        if edited is None:
            return None
        stored = stored if isinstance(stored, dict) else {}
        return {key: stored.get(key) if value is KEEP else value for key, value in edited.items()}

    return merge(headers, secrets.get("headers")), merge(body, secrets.get("body"))
