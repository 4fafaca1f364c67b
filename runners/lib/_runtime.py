"""State of one script execution: the record spool, the metadata, the trigger, log masking.

Records go straight to JSON-lines files on disk in rotated parts, so a script can write
millions of records without the sandbox (or the app) holding them in memory.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import logging
import os
import sys
import threading
import time
import uuid

try:  # orjson is several times faster; the standard library is the fallback.
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the sandbox image
    _orjson = None

WORK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(WORK_DIR, "out")
SPOOL_DIR = os.path.join(OUT_DIR, "spool")
CHECKPOINT_DIR = os.path.join(OUT_DIR, "checkpoints")
RECORDS_PER_PART = 50_000  # smaller parts: less left to load once the script ends


class PreviewComplete(BaseException):
    """Raised inside outputStream.write once a test has enough records. A BaseException so
    that a script's own `except Exception` does not swallow it."""


def _load_input() -> dict:
    path = os.path.join(WORK_DIR, "input.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


_INPUT = _load_input()


def _default(value):
    """Types that have an obvious JSON text form; anything else is the script's mistake."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


if _orjson is not None:
    _OPTIONS = _orjson.OPT_SERIALIZE_NUMPY | _orjson.OPT_APPEND_NEWLINE
    # Keys that are not text (json.dumps writes {1: "a"} as {"1": "a"}) are allowed only on a
    # second try: the option costs every record a tenth of its serialising time.
    _OPTIONS_ANY_KEYS = _OPTIONS | _orjson.OPT_NON_STR_KEYS
    _dumps = _orjson.dumps

else:  # pragma: no cover
    _OPTIONS = _OPTIONS_ANY_KEYS = None

    def _dumps(obj, default, option) -> bytes:
        return (json.dumps(obj, default=default, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def dumps_line(obj) -> bytes:
    try:
        return _dumps(obj, default=_default, option=_OPTIONS)
    except TypeError:
        return _dumps(obj, default=_default, option=_OPTIONS_ANY_KEYS)


MISSING = object()


def dig(data, path: str, default=None):
    """The value at a dotted path ("meta.next_cursor", "data.0.id") in JSON, or default."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return default
    return current


def _type_name(value) -> str:
    return type(value).__name__


def non_finite_field(value, path: str = "") -> str | None:
    """The path of the first NaN or Infinity in a record, or None. JSON cannot carry them and
    orjson writes them as null: a load would turn them silently into NULLs."""
    if isinstance(value, float):
        return path or "(the record)" if value != value or value in (_INF, -_INF) else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = non_finite_field(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


_INF = float("inf")


class OutputStream:
    """`outputStream.write(record)`: one JSON object per call, appended to the spool.

    Each part is written as part-NNNNN.jsonl.partial and renamed to part-NNNNN.jsonl once
    closed, so that the parent can load a part while the script writes the next one."""

    def __init__(self, record_limit: int | None):
        self._limit = record_limit
        self._part = -1
        self._file = None
        self.write = self._writer()

    def _writer(self):
        """write(record) as a closure. It is the one hot path of a large run (a call per
        record): its state lives in the closure's cells, which are faster to read than
        attributes, and one comparison per record covers both the part's end and a test's
        record limit. That made a million writes 0.3 s faster than a method did."""
        dumps, default, option, any_keys = _dumps, _default, _OPTIONS, _OPTIONS_ANY_KEYS
        check_all = _orjson is None
        room = 0  # records the current part (or the test's limit) still takes
        taken = 0  # records written before the current part began
        capacity = 0  # the current part's room when it began
        append = None  # the part file's write method

        def write(record) -> None:
            nonlocal room, taken, capacity, append
            if room <= 0:
                done = taken + capacity
                capacity = room = self._next_part(done)  # raises PreviewComplete at a test's limit
                taken, append = done, self._file.write
            if type(record) is not dict and not isinstance(record, dict):
                raise TypeError(
                    f"outputStream.write() takes a JSON object (dict); record #{taken + capacity - room + 1} "
                    f"is a {_type_name(record)}"
                )
            try:
                line = dumps(record, default=default, option=option)
            except TypeError:
                try:
                    line = dumps(record, default=default, option=any_keys)
                except TypeError as exc:
                    raise TypeError(f"record #{taken + capacity - room + 1} cannot be written as JSON: {exc}") from None
            if (b"null" in line or check_all) and (field := non_finite_field(record)) is not None:
                # orjson writes NaN as null, so only a line with a null can hide one: the others
                # pay one search of their bytes (the json fallback writes NaN: it checks them all).
                raise ValueError(
                    f"record #{taken + capacity - room + 1}: {field} is NaN or Infinity, which JSON cannot "
                    "carry; write None for a missing value (pandas: df.replace({np.nan: None}))"
                )
            append(line)
            room -= 1
            if room == 0 and self._limit is not None and taken + capacity >= self._limit:
                raise PreviewComplete()  # a test has its records: stop the script now

        def count() -> int:
            return taken + capacity - room

        def cut() -> int:
            """Close the current part now (a checkpoint): the next record starts a new one.
            The number of complete parts."""
            nonlocal room, capacity
            if self._file is not None:
                self._finish_part()
            capacity, room = capacity - room, 0
            return self._part + 1

        self._count = count
        self._cut = cut
        return write

    @property
    def count(self) -> int:
        return self._count()

    def _path(self, suffix: str) -> str:
        return os.path.join(SPOOL_DIR, f"part-{self._part:05d}{suffix}")

    def _finish_part(self) -> None:
        self._file.close()
        self._file = None
        os.replace(self._path(".jsonl.partial"), self._path(".jsonl"))

    def _next_part(self, written: int) -> int:
        """Start the next part, and return how many records it takes (fewer when a test's
        limit comes first); at the limit, stop the script instead."""
        if self._limit is not None and written >= self._limit:
            raise PreviewComplete()
        if self._file is not None:
            self._finish_part()
        self._part += 1
        os.makedirs(SPOOL_DIR, exist_ok=True)
        self._file = open(self._path(".jsonl.partial"), "wb", buffering=1 << 20)
        if self._limit is None:
            return RECORDS_PER_PART
        return min(RECORDS_PER_PART, self._limit - written)

    def write_many(self, records) -> None:
        """Batch form of write(): same checks, one call for many records."""
        for record in records:
            self.write(record)

    def close(self) -> None:
        if self._file is not None:
            self._finish_part()

    def cut(self) -> int:
        return self._cut()


class CheckpointFailed(Exception):
    """metadata.checkpoint() could not be committed: the run fails (the host says why)."""


def _atomic_write(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)  # atomic: the host never reads half of it


class Metadata(dict):
    """The feed's state from its last successful run or checkpoint (`{}` at first).
    `save(obj)` replaces the state that this run will commit, once its data is safely loaded.
    `checkpoint(obj)` (an extension) commits the records written so far and obj as the state,
    as one step, before it returns: a run that fails later resumes from there."""

    def __init__(self, state, checkpoints: bool = False):
        super().__init__(state)
        self._checkpoints = checkpoints  # False in a test run: checkpoints write nothing
        self._checkpointed = 0
        self._lock = threading.Lock()  # one checkpoint at a time, whichever thread asks

    def save(self, obj) -> None:
        data = self._encode(obj, "save")
        os.makedirs(OUT_DIR, exist_ok=True)
        _atomic_write(os.path.join(OUT_DIR, "metadata.json"), data)  # never half a state
        self.clear()
        self.update(json.loads(data))

    @staticmethod
    def _encode(obj, method: str) -> bytes:
        if not isinstance(obj, dict):
            raise TypeError(f"metadata.{method}() takes a JSON object (dict), got a {_type_name(obj)}")
        try:
            return dumps_line(obj)
        except TypeError as exc:
            raise TypeError(f"metadata.{method}() got a value that cannot be written as JSON: {exc}") from None

    def checkpoint(self, obj) -> None:
        """Commit the records written so far and obj as the feed's state, then return. The
        state is also what save(obj) would leave. In a test run only the state changes here."""
        data = self._encode(obj, "checkpoint")
        if not self._checkpoints:
            self.clear()
            self.update(json.loads(data))
            return
        with self._lock:
            self.save(obj)
            self._checkpointed += 1
            number = self._checkpointed
            marker = {"state": json.loads(data), "parts": outputStream.cut(), "records": outputStream.count}
            os.makedirs(CHECKPOINT_DIR, exist_ok=True)
            name = os.path.join(CHECKPOINT_DIR, f"{number:04d}")
            _atomic_write(name + ".json", json.dumps(marker).encode())
            answer = _wait_for(name + ".ack")
        if answer != "ok":
            raise CheckpointFailed(f"checkpoint {number} was not committed: {answer}")


def _wait_for(path: str) -> str:
    """The host's answer to a checkpoint: "ok", or why not. Blocks until it comes (the host
    commits the checkpoint meanwhile; the run's timeout still applies)."""
    wait = 0.002
    while True:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except FileNotFoundError:
            time.sleep(wait)
            wait = min(wait * 2, 0.05)


class Trigger:
    """What started this run; `payload` is the webhook request's JSON body (or None)."""

    def __init__(self, payload):
        self.payload = payload


class _MaskingStream:
    """Replaces known secrets in everything the script prints. Secrets learnt at run time
    (a Custom Auth token) are added with add_secret()."""

    def __init__(self, stream, secrets: list[str]):
        self._stream = stream
        self.secrets = secrets

    def write(self, text):
        return self._stream.write(mask_text(text))

    def __getattr__(self, name):
        return getattr(self._stream, name)


_SECRETS = sorted((s for s in _INPUT.get("secrets") or [] if s), key=len, reverse=True)


def _forms(secret: str) -> set[str]:
    """A secret and the forms it travels in: URL-encoded and base64 (standard and URL-safe,
    padded or not). The same rule as common.secrets.secret_forms, which the host applies to
    the secrets it knows; the sandbox cannot import the app, so it keeps its own copy."""
    from urllib.parse import quote, quote_plus
    import base64

    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    raw = secret.encode("utf-8")
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms.update((text, text.rstrip("=")))
    return {form for form in forms if form}


def add_secret(secret: str) -> None:
    """Mask a secret learnt at run time (a Custom Auth token) in every form it travels in."""
    if not secret:
        return
    for form in _forms(secret) - set(_SECRETS):
        _SECRETS.append(form)
    _SECRETS.sort(key=len, reverse=True)


learn_secret = add_secret


def mask_text(text: str) -> str:
    for secret in _SECRETS:
        if secret and secret in text:
            text = text.replace(secret, "****")
    return text


def install_masking() -> None:
    sys.stdout = _MaskingStream(sys.stdout, _SECRETS)
    sys.stderr = _MaskingStream(sys.stderr, _SECRETS)


def _make_logger() -> logging.Logger:
    log = logging.getLogger("feed")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


outputStream = OutputStream(_INPUT.get("record_limit"))
metadata = Metadata(_INPUT.get("metadata") or {}, checkpoints=bool(_INPUT.get("checkpoints")))
trigger = Trigger(_INPUT.get("trigger"))
connection_config = _INPUT.get("connection")
logger = _make_logger()
