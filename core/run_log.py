"""A run's log file: appended as output comes, flushed line by line so that a reader (the UI,
`logs --follow`) sees it live, and bounded (TRIBUTARY_RUN_LOG_LIMIT_MB).

Past its limit the log keeps its head and its tail: the first half of the limit is written
as it comes; after that a notice says the rest is held back, and the output goes to a rolling
tail on disk (two segments beside the log, each at most half the limit, the older dropped as
a new one fills). When the run ends, the log gets a line saying how much was cut, then the
last half of the limit of output. Neither memory nor disk grows with a chattier script.

In a worker, the log is shipped to the store as it grows (`shipper`, core/log_chunks.py), a
last time when it is closed. A line written after close (the store could not record the
run's end) is appended to the file and shipped at once.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path

from common.settings import get_settings
from core.log_chunks import LogShipper
from storage.models import utcnow

MB = 1024 * 1024
LIMIT_ENV = "TRIBUTARY_RUN_LOG_LIMIT_MB"


def size_text(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB // 10 else f"{n / 1024:.1f} KB"


class RunLog:
    def __init__(self, path: Path, limit_bytes: int | None = None, shipper: LogShipper | None = None):
        if limit_bytes is None:
            limit_bytes = get_settings().run_log_limit_mb * MB
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "a", encoding="utf-8", errors="replace", buffering=1)
        self._lock = threading.Lock()
        self._limit = max(0, limit_bytes)  # 0: no limit
        self._head_left = self._limit // 2 - self._file.tell() if self._limit else None
        self._tail_budget = self._limit - self._limit // 2
        self._tail: list[Path] = []  # the rolling tail's segments, oldest first
        self._segment = None
        self._segment_bytes = 0
        self._tail_seen = 0  # bytes sent to the tail in all
        self._rolls = 0
        self._shipper = shipper.start() if shipper is not None else None

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __call__(self, line: str) -> None:
        data = line + "\n"
        with self._lock:
            if self._file.closed:
                self._late(data)
                return
            if self._head_left is None:
                self._file.write(data)
                return
            size = len(data.encode("utf-8", errors="replace"))
            if not self._tail and size <= self._head_left:
                self._file.write(data)
                self._head_left -= size
                return
            self._to_tail(data, size)

    def _to_tail(self, data: str, size: int) -> None:
        if not self._tail:
            self._file.write(f"[tributary {self._now()}] the log reached {size_text(self._limit // 2)}: "
                             f"the rest of the output is held back and its last {size_text(self._tail_budget)} "
                             f"are written when the run ends ({LIMIT_ENV})\n")
        if self._segment is None or self._segment_bytes + size > self._tail_budget:
            self._roll()
        self._segment.write(data)
        self._segment_bytes += size
        self._tail_seen += size

    def _roll(self) -> None:
        if self._segment is not None:
            self._segment.close()
        if len(self._tail) == 2:
            self._tail.pop(0).unlink(missing_ok=True)
        self._rolls += 1
        segment = self.path.with_name(f"{self.path.name}.tail{self._rolls % 2}")
        self._tail.append(segment)
        self._segment = open(segment, "w", encoding="utf-8", errors="replace")
        self._segment_bytes = 0

    def system(self, message: str) -> None:
        self(f"[tributary {self._now()}] {message}")

    @staticmethod
    def _now() -> str:
        return utcnow().strftime("%H:%M:%S")

    def close(self) -> None:
        """Write the held-back tail, close the file and ship what the store lacks. Again
        after that: only the shipping (a store that failed at the first close may answer now)."""
        with self._lock:
            if not self._file.closed:
                if self._tail:
                    self._write_tail()
                self._file.close()
        if self._shipper is not None:
            self._shipper.close()

    def _late(self, data: str) -> None:
        """A line after close: a few of the run executor's own, past the limit's accounting."""
        with open(self.path, "a", encoding="utf-8", errors="replace") as handle:
            handle.write(data)
        if self._shipper is not None:
            self._shipper.flush(final=True)

    def _write_tail(self) -> None:
        """The cut line, then the last tail-budget bytes of the rolling tail (from a line start).
        The older segment is full, so the bytes to skip all lie in it."""
        self._segment.close()
        sizes = [p.stat().st_size for p in self._tail]
        skip = max(0, sum(sizes) - self._tail_budget)
        handles = [open(p, "rb") for p in self._tail]
        try:
            first = handles[0]
            if skip:
                first.seek(skip - 1)
                if first.read(1) != b"\n":
                    skip += len(first.readline())  # the line the cut falls in goes whole
            cut = self._tail_seen - (sum(sizes) - skip)
            if cut:
                self._file.write(f"… {size_text(cut)} of output cut ({LIMIT_ENV}) …\n")
            self._file.flush()
            for handle in handles:
                while block := handle.read(MB):
                    self._file.buffer.write(block)
            self._file.flush()
        finally:
            for handle in handles:
                handle.close()
        for path in self._tail:
            path.unlink(missing_ok=True)
        self._tail = []


def read_tail(path: Path, max_bytes: int, offset: int = 0) -> tuple[str, int, bool]:
    """What a file holds past `offset`, but at most its last `max_bytes` (seeking from the end,
    so a large log is never read whole): (text, the offset to continue from, whether bytes
    were skipped). When bytes are skipped the text starts at a line start."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return "", offset, False
    with handle:
        end = os.fstat(handle.fileno()).st_size
        if end < offset:  # a new file in its place
            offset = 0
        start = max(offset, end - max_bytes)
        handle.seek(start)
        data = handle.read(end - start)
    skipped = start > offset
    return tail_text(data, skipped), end, skipped


def tail_text(data: bytes, skipped: bool) -> str:
    """A log's bytes as text; when bytes before them were skipped, from their first line start."""
    if skipped and b"\n" in data:
        data = data[data.index(b"\n") + 1:]
    return data.decode("utf-8", errors="replace")


class BoundedLines:
    """Lines kept in memory (a test run's output): the first half of `limit_bytes` as they
    come, then a rolling tail of the other half; lines() says how much was cut between them."""

    def __init__(self, limit_bytes: int = 2 * MB):
        self._head: list[str] = []
        self._tail: deque[tuple[str, int]] = deque()
        self._head_left = limit_bytes // 2
        self._tail_budget = limit_bytes - limit_bytes // 2
        self._tail_bytes = 0
        self._cut = 0
        self._lock = threading.Lock()

    def append(self, line: str) -> None:
        size = len(line.encode("utf-8", errors="replace")) + 1
        with self._lock:
            if not self._tail and size <= self._head_left:
                self._head.append(line)
                self._head_left -= size
                return
            self._tail.append((line, size))
            self._tail_bytes += size
            while self._tail_bytes > self._tail_budget and len(self._tail) > 1:
                _, dropped = self._tail.popleft()
                self._cut += dropped
                self._tail_bytes -= dropped

    def lines(self) -> list[str]:
        with self._lock:
            cut = [f"… {size_text(self._cut)} of output cut …"] if self._cut else []
            return self._head + cut + [line for line, _ in self._tail]
