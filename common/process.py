"""Which process does a piece of work (a run, a notification, a sandbox container): its host,
pid and start time, recorded with the work, so that a process starting later on the same host
can tell work left by a process that died from work another process is still doing.

The start time matters where pids are reused at once: in a container the app is pid 1 again
after every restart, and a pid alone would make the dead process look alive."""

from __future__ import annotations

import os
import socket


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (None: no such process, or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def worker_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or ''}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def alive(worker: str) -> bool:
    """Whether the process named by worker_id() may still be running. Another host's process
    is never judged dead: its processes cannot be seen from here. Without a start time (no
    /proc, or a row written before start times were kept) the pid alone has to do."""
    host, _, rest = worker.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    if started:
        return _start_time(int(pid_text)) == started
    return pid_alive(int(pid_text))


def died(worker: str | None) -> bool:
    """Whether work recorded with this worker_id() was left by a process of this host that
    no longer exists (nothing recorded: not judged)."""
    return bool(worker) and not alive(worker)


def worker_label(worker: str | None) -> str:
    """A run's worker column (host:pid:start time) as people read it: "host (pid N)"."""
    fields = worker_fields(worker)
    if fields is None:
        return ""
    return f"{fields['host']} (pid {fields['pid']})" if fields["pid"] is not None else fields["host"]


def worker_fields(worker: str | None) -> dict | None:
    """A run's worker as JSON: its host and pid (None: no process took the run)."""
    if not worker:
        return None
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    return {"host": host, "pid": int(pid) if pid.isdigit() else None}
