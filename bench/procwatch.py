"""Peak resident memory of a process and all its descendants, sampled from /proc.

Each process's own high-water mark (VmHWM) is read while it lives, so short-lived children are
caught as long as they live longer than the sampling interval.

A child sampled between fork and exec still maps its parent's pages (shared copy-on-write, so
counted in its RSS too); when its command line changes (the exec), that earlier figure is
dropped rather than kept as its peak, or the parent's memory would be counted twice.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field


def _children(pid: int) -> list[int]:
    """Children of every thread of the process, not only of its main thread."""
    children = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                children.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return children


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        stack.extend(_children(current))
    return pids


def _status(pid: int) -> tuple[str, int, int] | None:
    """(command name, current RSS kB, peak RSS kB) of a live process."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmd = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        return cmd[:80], int(fields.get("VmRSS", "0 kB").split()[0]), int(fields.get("VmHWM", "0 kB").split()[0])
    except (OSError, ValueError):
        return None


@dataclass
class Watch:
    peak_kb: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (cmd, peak kB)
    max_sum_kb: int = 0  # largest sum of current RSS over the tree at one instant

    def sample(self, root: int) -> None:
        total = 0
        for pid in _tree(root):
            status = _status(pid)
            if status is None:
                continue
            cmd, rss, hwm = status
            total += rss
            previous_cmd, previous = self.peak_kb.get(pid, ("", 0))
            if not cmd:  # a zombie: no command line and no memory left to read
                cmd = previous_cmd
            elif previous_cmd and cmd != previous_cmd:
                previous = 0  # it exec'd: the figure before was its parent's pages (see above)
            self.peak_kb[pid] = (cmd, max(previous, hwm))
        self.max_sum_kb = max(self.max_sum_kb, total)

    @property
    def sum_of_peaks_mb(self) -> float:
        return sum(kb for _, kb in self.peak_kb.values()) / 1024


def run_watched(cmd: list[str], env: dict | None = None, cwd: str | None = None, interval_s: float = 0.02):
    """Run a command to its end; return (exit code, wall seconds, Watch, stdout text)."""
    watch = Watch()
    started = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = threading.Event()

    def sampler():
        while not done.is_set():
            watch.sample(process.pid)
            time.sleep(interval_s)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    output = process.communicate()[0]
    wall = time.perf_counter() - started
    done.set()
    thread.join()
    return process.returncode, wall, watch, output


def describe(watch: Watch) -> list[str]:
    lines = []
    for pid, (cmd, kb) in sorted(watch.peak_kb.items()):
        lines.append(f"    pid {pid:>7}  peak RSS {kb / 1024:8.1f} MB  {cmd}")
    return lines


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    code, wall, watch, out = run_watched(sys.argv[1:], env=dict(os.environ))
    print(out)
    print(f"exit {code}, {wall:.2f} s, sum of peaks {watch.sum_of_peaks_mb:.1f} MB")
    print("\n".join(describe(watch)))
