"""Reading a run's spool (JSON-lines files) a chunk of records at a time, so that a load never
holds the whole run in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from storage.destinations.base import SpoolError

DEFAULT_CHUNK_ROWS = 50_000
_BLOCK_BYTES = 4 * 2**20  # lines are read in blocks of about this size


def non_empty(files: list[Path]) -> list[Path]:
    return [Path(f) for f in files if Path(f).exists() and Path(f).stat().st_size > 0]


def read_chunks(files: list[Path], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list]:
    """Yield lists of at most `chunk_rows` parsed values, in the order they were written.

    A line that is not JSON means the spool is damaged (the writer only writes whole lines),
    so it fails the load instead of being skipped. A line that is JSON but not an object is
    passed on for the loader to reject with a reason.
    """
    chunk: list = []
    for path in non_empty(files):
        with open(path, "rb") as handle:
            first_line = 1
            while lines := handle.readlines(_BLOCK_BYTES):
                try:
                    values = list(map(orjson.loads, lines))  # the fast path: every line is a JSON value
                except orjson.JSONDecodeError:
                    values = _parse_carefully(lines, path, first_line)
                chunk += values
                first_line += len(lines)
                while len(chunk) >= chunk_rows:
                    yield chunk[:chunk_rows]
                    chunk = chunk[chunk_rows:]
    if chunk:
        yield chunk


def _parse_carefully(lines: list[bytes], path: Path, first_line: int) -> list:
    """Line by line: blank lines are skipped, anything else that is not JSON is damage."""
    values = []
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            values.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise SpoolError(f"the spool file {path.name} is damaged at line {number}: {exc}") from None
    return values
