"""A run's log in the store, so that the app and the CLI show it wherever the run executed.

A worker (core/worker.py) writes each run's log to a file of its own data dir, as the app
does (core/run_log.py), and ships what the file gains to the store's `run_log_chunks`: every
FLUSH_S, in chunks of at most CHUNK_BYTES, and a last time when the log is closed, which the
run executor does before it writes the run's final status, so that a run seen ended has its
whole log in the store. The chunks are the file's bytes, in order, so the store's copy has
the file's limit (head and tail kept, a line saying what was cut) and its byte offsets:
a reader that tailed the file goes on from the same offset in the store.

The file is the buffer: a store that does not answer costs nothing but a line in the
worker's log; what the file gained meanwhile is shipped at the next flush. A chunk is shipped
once: its (run, seq) is the key, and a flush whose commit is uncertain reads where the store
got to before it ships again.

The app's local executor does not ship: it executes runs in the process that shows them,
next to their files, and a store write every FLUSH_S per running run would only compete with
the app's own writes (the SQLite store has one writer at a time).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy import func, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.db import session_scope
from storage.models import RunLogChunk, utcnow

logger = logging.getLogger("tributary.runs")

CHUNK_BYTES = 64 * 1024
FLUSH_S = 0.5
FLUSH_MAX_BYTES = 4 * 1024 * 1024  # one transaction's share of a large flush (a capped log's tail)

_shipping = threading.Event()


def ship_from_this_process() -> None:
    """Make the runs this process executes ship their logs to the store (a worker's choice)."""
    _shipping.set()


def ships() -> bool:
    return _shipping.is_set()


# ---------------------------------------------------------------- shipping


def _char_start(data: bytes, limit: int) -> int:
    """The last position at most `limit` that starts a UTF-8 character (no character split)."""
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut or limit


def _cut(data: bytes, limit: int) -> int:
    """Where the first chunk of `data` ends: after its last whole line within `limit` bytes,
    else (one long line) at a character start."""
    if len(data) <= limit:
        return len(data)
    newline = data.rfind(b"\n", 0, limit)
    return newline + 1 if newline >= 0 else _char_start(data, limit)


def chunks_of(data: bytes, limit: int = CHUNK_BYTES) -> list[bytes]:
    pieces = []
    while data:
        cut = _cut(data, limit)
        pieces.append(data[:cut])
        data = data[cut:]
    return pieces


def _text(piece: bytes) -> str:
    # PostgreSQL's text holds no NUL; a one-byte stand-in keeps the chunk's length in bytes.
    return piece.replace(b"\x00", b"?").decode("utf-8", errors="replace")


class LogShipper:
    """Ships a run's log file to the store as it grows (see the module docstring)."""

    def __init__(self, run_id: str, feed_id: int, path: Path):
        self.run_id, self.feed_id, self.path = run_id, feed_id, path
        self._lock = threading.Lock()  # one flush at a time: the flush thread's, or the last
        self._shipped: int | None = None  # the file's bytes in the store; None: ask the store
        self._seq = 0
        self._failures = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"log-{run_id}", daemon=True)

    def start(self) -> "LogShipper":
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._done.wait(FLUSH_S):
            self.flush()

    def close(self) -> bool:
        """Stop following and ship all the file holds; whether it is all in the store."""
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        return self.flush(final=True)

    def flush(self, final: bool = False) -> bool:
        """Ship what the file gained: its whole lines, and with `final` its last bytes too.
        Whether everything read was shipped. Never raises: a store that fails is tried again
        at the next flush, and the worker's log says so."""
        with self._lock:
            try:
                while self._ship_next(final):
                    pass
            except Exception as exc:  # noqa: BLE001 - see the docstring
                self._failed(exc)
                return False
            if self._failures:
                logger.info("run %s: its log reaches the store again (after %d failed attempts)", self.run_id,
                            self._failures)
                self._failures = 0
            return True

    def _ship_next(self, final: bool) -> bool:
        """One transaction's share of the file's new bytes; whether there may be more."""
        if self._shipped is None:
            self._shipped, self._seq = stored_end(self.run_id)
        data = self._read_new()
        whole = data if final and len(data) < FLUSH_MAX_BYTES else data[:data.rfind(b"\n") + 1]
        if not whole and len(data) >= FLUSH_MAX_BYTES:  # one line longer than a flush's share
            whole = data[:_char_start(data, len(data) - 1)]
        if not whole:
            return False
        rows, start = [], self._shipped
        for seq, piece in enumerate(chunks_of(whole), start=self._seq):
            rows.append({"run_id": self.run_id, "seq": seq, "feed_id": self.feed_id, "byte_start": start,
                         "byte_end": start + len(piece),
                         "text": _text(piece), "created_at": utcnow()})
            start += len(piece)
        try:
            with session_scope() as session:
                session.execute(insert(RunLogChunk), rows)
        except IntegrityError:
            self._shipped = None  # an earlier flush's commit did go through: ask where the store is
            return True
        self._shipped, self._seq = start, self._seq + len(rows)
        return len(data) >= FLUSH_MAX_BYTES

    def _read_new(self) -> bytes:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._shipped)
                return handle.read(FLUSH_MAX_BYTES)
        except FileNotFoundError:
            return b""

    def _failed(self, exc: Exception) -> None:
        self._shipped = None  # the store may hold the failed flush's chunks: ask it next time
        self._failures += 1
        if self._failures == 1:
            logger.warning("run %s: its log could not be shipped to the store (%s); the worker keeps it in %s "
                           "and tries again every %g s", self.run_id, exc, self.path, FLUSH_S)


def stored_end(run_id: str) -> tuple[int, int]:
    """How many bytes of the run's log the store holds, and the next chunk's seq."""
    with session_scope() as session:
        end, seq = session.execute(
            select(func.max(RunLogChunk.byte_end), func.max(RunLogChunk.seq)).where(RunLogChunk.run_id == run_id)
        ).one()
    return (0, 0) if end is None else (end, seq + 1)



def append_to_stored(run_id: str, feed_id: int, text: str) -> bool:
    """Add lines written after the run's process stopped (recovery's notes) to the stored log,
    when the store holds it (the run executed on a worker, whose file the recovering process
    may not see); whether they were added. Two processes appending at once: the later one
    asks again where the log ends."""
    data = text.encode("utf-8", "replace")
    for _attempt in range(3):
        end, seq = stored_end(run_id)
        if seq == 0:
            return False
        try:
            with session_scope() as session:
                session.execute(insert(RunLogChunk), [{
                    "run_id": run_id, "seq": seq, "feed_id": feed_id, "byte_start": end,
                    "byte_end": end + len(data), "text": _text(data), "created_at": utcnow()}])
            return True
        except IntegrityError:
            continue
    return False


# ---------------------------------------------------------------- reading


def stored_size(run_id: str) -> int | None:
    """The size of the run's log in the store; None when the store has none of it."""
    with session_scope() as session:
        return session.execute(select(func.max(RunLogChunk.byte_end)).where(RunLogChunk.run_id == run_id)).scalar()


def read_stored(run_id: str, offset: int = 0, max_bytes: int | None = None) -> tuple[bytes, bool, int] | None:
    """The stored log's bytes from `offset` to its end, but at most the last `max_bytes`:
    (bytes, whether bytes past `offset` were skipped, the end), as core/run_log.py read_tail
    reads a file. None when the store has none of the run's log."""
    end = stored_size(run_id)
    if end is None:
        return None
    if end < offset:  # not this log's offset
        offset = 0
    start = offset if max_bytes is None else max(offset, end - max_bytes)
    with session_scope() as session:
        # Bounded by `end`: chunks shipped since it was read wait for the next read.
        rows = session.execute(
            select(RunLogChunk.byte_start, RunLogChunk.text)
            .where(RunLogChunk.run_id == run_id, RunLogChunk.byte_end > start, RunLogChunk.byte_start < end)
            .order_by(RunLogChunk.seq)
        ).all()
    if not rows:
        return b"", start > offset, end
    data = b"".join(text.encode("utf-8") for _, text in rows)
    return data[start - rows[0].byte_start:end - rows[0].byte_start], start > offset, end
