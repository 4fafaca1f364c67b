"""Unsaved work in the feed editor, kept on disk under <data dir>/drafts/ (one JSON file per
draft) so that switching pages, reloading the browser or losing the session never loses it.

A draft belongs to an owner (the signed-in user, or the whole team when there is no personal
login) and is either a new feed ("new-...") or changes to a saved feed ("edit-...").
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

from common.errors import NotFound, ValidationError
from common.settings import get_settings

_DRAFT_ID = re.compile(r"^[A-Za-z0-9_-]{1,120}$")


def _drafts_dir() -> Path:
    return get_settings().data_dir / "drafts"


def _path(draft_id: str) -> Path:
    # The id comes from a URL: only a plain file name may reach the file system.
    if not _DRAFT_ID.match(draft_id or ""):
        raise ValidationError.single("draft", f"{draft_id!r} is not a draft id")
    return _drafts_dir() / f"{draft_id}.json"


def new_draft_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def save_draft(draft_id: str, content: dict) -> str:
    """Write the draft atomically (a reader never sees half a file); returns the save time."""
    path = _path(draft_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    saved_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = {**content, "id": draft_id, "saved_at": saved_at}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".draft-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=1, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return saved_at


def load_draft(draft_id: str) -> dict:
    path = _path(draft_id)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"draft {draft_id!r} does not exist") from None


def draft_exists(draft_id: str) -> bool:
    return _path(draft_id).exists()


def discard_draft(draft_id: str) -> None:
    _path(draft_id).unlink(missing_ok=True)


def list_drafts(owner: str, kind: str | None = None) -> list[dict]:
    """The owner's drafts, most recently saved first."""
    folder = _drafts_dir()
    if not folder.exists():
        return []
    drafts = []
    for path in folder.glob("*.json"):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a file being replaced right now, or not ours
        if document.get("owner") != owner or (kind and document.get("mode") != kind):
            continue
        drafts.append(document)
    return sorted(drafts, key=lambda d: d.get("saved_at", ""), reverse=True)


def dependency_sets() -> list[list[str]]:
    """The dependencies of every draft, whoever owns it: their environments are in use."""
    folder = _drafts_dir()
    sets = []
    for path in folder.glob("*.json") if folder.exists() else []:
        try:
            dependencies = json.loads(path.read_text(encoding="utf-8")).get("dependencies")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue  # a file being replaced right now, or not ours
        if isinstance(dependencies, list):
            sets.append([str(dep) for dep in dependencies])
    return sets
