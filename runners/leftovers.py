"""Killing what a dead process's run left running, from the reference the run recorded
(RunHandle.sandbox_ref): recovery calls this before it settles the run, so that a script
cannot outlive its run and write on while a retry starts.

- `pgid:N`: the script's process group (the subprocess runners start each script in a
  session of its own). Killed only while its leader still works in the run's work dir, so a
  process group id that the system has given to something else since is left alone. (A
  bubblewrap sandbox dies with the process that started it; this is for the unisolated runner,
  and for a sandbox that was still starting.)
- `container:ID`: the run's container, removed with force.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)


def kill_left_sandbox(ref: str | None, work_dir: Path) -> bool:
    """Kill the sandbox `ref` names if it is still there; whether something was killed."""
    kind, _, value = (ref or "").partition(":")
    if kind == "pgid" and value.isdigit():
        return _kill_group(int(value), work_dir)
    if kind == "container" and value:
        return _remove_container(value)
    return False


def _kill_group(pgid: int, work_dir: Path) -> bool:
    try:
        cwd = os.readlink(f"/proc/{pgid}/cwd")
    except OSError:
        return False  # gone (or not ours to look at)
    if Path(cwd) != work_dir.resolve():
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    log.warning("killed process group %d, left running by a dead process's run in %s", pgid, work_dir)
    return True


def _remove_container(container_id: str) -> bool:
    try:
        from runners.docker_engine import client

        client().containers.get(container_id).remove(force=True)
    except Exception:  # noqa: BLE001 - no engine, or the container is gone: nothing to kill
        return False
    log.warning("removed container %s, left running by a dead process's run", container_id[:12])
    return True
