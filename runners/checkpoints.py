"""The host's side of `metadata.checkpoint()` (runners/lib/_runtime.py): its markers and answers.

A checkpoint closes the script's current spool part, writes out/checkpoints/NNNN.json (numbered
from 0001, renamed into place once complete): {"state": the new state, "parts": how many spool
parts are complete (part-00000 up to it), "records": records written so far}, and blocks until
the host writes NNNN.ack: "ok" once the checkpoint is committed, or "error: <why>" (the script
then raises). The files are the script's to scribble on: the directories are opened without
following symlinks, a marker must be a regular file of at most MAX_MARKER_BYTES, and whatever
is malformed is an error of the run, never a crash of the host.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from common.errors import TributaryError
from runners.base import MAX_OUTCOME_FILE_BYTES, UnsafeWorkFile, is_own_regular_file, open_dir, read_work_file

MAX_MARKER_BYTES = MAX_OUTCOME_FILE_BYTES


class CheckpointError(TributaryError):
    """A checkpoint marker the host cannot accept."""


@dataclass(frozen=True)
class Checkpoint:
    number: int  # 1, 2, ... in the run
    state: dict
    parts: int  # spool parts complete at the checkpoint (all of the run's, from part-00000)
    records: int  # records the script had written


class CheckpointMarkers:
    """Reads a run's checkpoint markers in order and answers them."""

    def __init__(self, work_dir: Path):
        self._path = work_dir / "out" / "checkpoints"
        self.last = 0  # the number of the last marker read

    def _open(self) -> int | None:
        """out/checkpoints' fd, reached from the work dir without following a symlink."""
        fd = None
        try:
            for part in (self._path.parent.parent, Path("out"), Path("checkpoints")):
                new = open_dir(part, dir_fd=fd)
                if fd is not None:
                    os.close(fd)
                fd = new
            return fd
        except (FileNotFoundError, UnsafeWorkFile) as exc:
            if fd is not None:
                os.close(fd)
            if isinstance(exc, FileNotFoundError):
                return None
            raise CheckpointError(f"out/checkpoints is not a folder of the run's work dir: {exc}") from exc

    def next(self) -> Checkpoint | None:
        """The next marker, once the script has written it."""
        number = self.last + 1
        fd = self._open()
        if fd is None:
            return None
        try:
            raw = _read(fd, f"{number:04d}.json")
        except CheckpointError:
            self.last = number  # refused once: the next one is looked for next
            raise
        finally:
            os.close(fd)
        if raw is None:
            return None
        self.last = number
        try:
            marker = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            marker = None
        if not (isinstance(marker, dict) and isinstance(marker.get("state"), dict)
                and type(marker.get("parts")) is int and type(marker.get("records")) is int
                and marker["parts"] >= 0 and marker["records"] >= 0):
            raise CheckpointError(f"checkpoint {number}'s marker is unreadable (was it overwritten?)")
        return Checkpoint(number, marker["state"], marker["parts"], marker["records"])

    def answer(self, number: int, answer: str) -> None:
        """Tell the script waiting in checkpoint() that it may go on ("ok") or why not."""
        fd = self._open()
        if fd is None:
            raise CheckpointError("out/checkpoints is gone")
        try:
            name, tmp = f"{number:04d}.ack", f".{number:04d}.ack.tmp"
            with suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=fd)
            handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=fd)
            try:
                os.write(handle, (answer.replace("\n", " ") + "\n").encode("utf-8"))
            finally:
                os.close(handle)
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)  # the script never reads half an answer
        finally:
            os.close(fd)


def _read(dir_fd: int, name: str) -> bytes | None:
    """A marker's bytes, or None while it is not there: a regular file with no second name
    (runners/base.py read_work_file, is_own_regular_file)."""
    try:
        raw = read_work_file(dir_fd, name, MAX_MARKER_BYTES)
    except UnsafeWorkFile as exc:
        raise CheckpointError(str(exc).replace("out/", "out/checkpoints/", 1)) from exc
    if raw is not None and not is_own_regular_file(dir_fd, name):
        raise CheckpointError(f"out/checkpoints/{name} is not a regular file of its own (a hard link?)")
    return raw
