"""Which process does a piece of work (a run, a notification): its host and pid, recorded
with the work, so that a process starting later on the same host can tell work left by a
process that died from work another process is still doing."""

from __future__ import annotations

import os
import socket


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def died(worker: str | None) -> bool:
    """Whether the process named by worker_id() ran on this host and no longer exists. Work
    of another host is never judged: its processes cannot be seen from here."""
    if not worker:
        return False
    host, _, pid = worker.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))
