"""Taking a run's spool parts out of the sandbox's reach as soon as each one is complete.

The sandbox writes part-NNNNN.jsonl.partial and renames it to part-NNNNN.jsonl once the part is
closed (see runners/lib/_runtime.py). A PartCollector moves each complete part into a directory
of the parent's own, outside the work dir that a container mounts. From then on nothing the script does can
change a part being loaded, and only regular files are accepted: a symlink planted in the spool
would otherwise make the parent read (and load into the warehouse) a file of the script's
choosing.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from common.errors import TributaryError

_PART = re.compile(r"^part-(\d{5,})\.jsonl$")


class PartCollector:
    def __init__(self, spool_dir: Path, into: Path):
        self.spool_dir = spool_dir
        self.into = into
        self.parts: list[Path] = []  # taken so far, in order

    def collect(self, final: bool = False) -> list[Path]:
        """Move the parts completed since the last call, in order, and return them. While the
        script runs, parts are taken strictly in sequence; once it has ended (final=True) every
        part left is taken, as a load after the script would."""
        ready = sorted((int(m.group(1)), name) for name in self._names() if (m := _PART.match(name)))
        taken = []
        for index, name in ready:
            if not final and index != len(self.parts):
                break
            part = self._take(name)
            self.parts.append(part)
            taken.append(part)
        return taken

    def _names(self) -> list[str]:
        try:
            return os.listdir(self.spool_dir)
        except FileNotFoundError:
            return []

    def _take(self, name: str) -> Path:
        self.into.mkdir(parents=True, exist_ok=True)
        target = self.into / name
        if os.path.lexists(target):
            raise TributaryError(f"the script wrote the spool part {name} again after it was complete")
        os.rename(self.spool_dir / name, target)  # a rename moves a symlink itself, never its target
        if not stat.S_ISREG(os.lstat(target).st_mode):
            raise TributaryError(f"the spool part {name} is not a regular file: the script replaced it")
        return target

