"""Taking a run's spool parts out of the sandbox's reach as soon as each one is complete.

The sandbox writes part-NNNNN.jsonl.partial and renames it to part-NNNNN.jsonl once the part is
closed (see runners/lib/_runtime.py). A PartCollector moves each complete part into a directory
of the parent's own, outside the work dir that a container mounts. From then on nothing the script does can
change a part being loaded, and only regular files are accepted: a symlink planted in the spool
would otherwise make the parent read (and load into the warehouse) a file of the script's
choosing. The spool dir and out/ are opened without following symlinks (a spool dir
replaced by a symlink to a folder of the host is refused, never emptied), and a part with a
second name (a hard link to a file elsewhere) is refused too.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from common.errors import TributaryError
from runners.base import UnsafeWorkFile, open_dir

_PART = re.compile(r"^part-(\d{5,})\.jsonl$")


class PartCollector:
    def __init__(self, spool_dir: Path, into: Path):
        self.spool_dir = spool_dir
        self.into = into
        self.parts: list[Path] = []  # taken so far, in order

    def _open_spool(self) -> int | None:
        """The spool dir's fd, reached from its parent without following a symlink on the way."""
        try:
            parent = open_dir(self.spool_dir.parent.parent)
        except FileNotFoundError:
            return None
        try:
            out = open_dir(Path(self.spool_dir.parent.name), dir_fd=parent)
            try:
                return open_dir(Path(self.spool_dir.name), dir_fd=out)
            finally:
                os.close(out)
        except FileNotFoundError:
            return None
        except UnsafeWorkFile as exc:
            raise TributaryError(f"the spool folder is not a folder of the run's work dir: {exc}") from exc
        finally:
            os.close(parent)

    def collect(self, final: bool = False) -> list[Path]:
        """Move the parts completed since the last call, in order, and return them. While the
        script runs, parts are taken strictly in sequence; once it has ended (final=True) every
        part left is taken, as a load after the script would."""
        spool = self._open_spool()
        if spool is None:
            return []
        try:
            ready = sorted((int(m.group(1)), name) for name in os.listdir(spool) if (m := _PART.match(name)))
            taken = []
            for index, name in ready:
                if not final and index != len(self.parts):
                    break
                part = self._take(spool, name)
                self.parts.append(part)
                taken.append(part)
            return taken
        finally:
            os.close(spool)

    def _take(self, spool: int, name: str) -> Path:
        self.into.mkdir(parents=True, exist_ok=True)
        target = self.into / name
        if os.path.lexists(target):
            raise TributaryError(f"the script wrote the spool part {name} again after it was complete")
        os.rename(name, target, src_dir_fd=spool)  # a rename moves a symlink itself, never its target
        info = os.lstat(target)
        if not stat.S_ISREG(info.st_mode):
            raise TributaryError(f"the spool part {name} is not a regular file: the script replaced it")
        if info.st_nlink != 1:
            raise TributaryError(f"the spool part {name} is a hard link to another file: the script replaced it")
        return target
