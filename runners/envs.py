"""Python environments for feed dependencies, cached by the hash of the dependency list.

The first run of a dependency set builds a virtual environment with uv (pip as a fallback),
streaming the installer's output to the run's log; later runs reuse it. A file lock makes two
runs that need the same new set build it once. The app's own packages (requests, orjson...)
stay importable through a .pth file placed last on sys.path, so the script's own pins win.
Each use touches the environment's .ready file, so that remove_unused_environments() can tell
a set still in use from one that every feed and draft has moved away from.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Callable, Iterable

from common.errors import TributaryError


class DependencyInstallError(TributaryError):
    pass


def dependency_hash(dependencies: list[str]) -> str:
    normalised = sorted({dep.strip() for dep in dependencies if dep.strip()})
    key = "\n".join([sys.version.split()[0], *normalised])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _uv_binary() -> str | None:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:  # noqa: BLE001 - uv missing or broken: fall back to pip
        return shutil.which("uv")


def _stream(cmd: list[str], on_log: Callable[[str], None]) -> tuple[int, list[str]]:
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip("\n")
        on_log(line)
        tail = (tail + [line])[-15:]
    return process.wait(), tail


def _build(env_dir: Path, dependencies: list[str], on_log: Callable[[str], None]) -> None:
    uv = _uv_binary()
    python = env_dir / "bin" / "python"
    if uv:
        create = [uv, "venv", "--quiet", "--python", sys.executable, str(env_dir)]
        install = [uv, "pip", "install", "--python", str(python), *dependencies]
    else:
        create = [sys.executable, "-m", "venv", str(env_dir)]
        install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *dependencies]
    code, tail = _stream(create, on_log)
    if code != 0:
        raise DependencyInstallError("could not create the environment:\n" + "\n".join(tail))
    site = Path(sysconfig.get_paths(vars={"base": str(env_dir), "platbase": str(env_dir)})["purelib"])
    site.mkdir(parents=True, exist_ok=True)
    app_site = sysconfig.get_paths()["purelib"]
    (site / "zzz_tributary_app_site.pth").write_text(app_site + "\n")
    on_log(f"$ installing {' '.join(dependencies)}")
    code, tail = _stream(install, on_log)
    if code != 0:
        raise DependencyInstallError("installing the dependencies failed:\n" + "\n".join(tail))


def ensure_environment(envs_dir: Path, dependencies: list[str], on_log: Callable[[str], None]) -> str:
    """The interpreter to run the script with: the app's own when there are no dependencies."""
    deps = [dep.strip() for dep in dependencies if dep.strip()]
    if not deps:
        return sys.executable
    env_dir = envs_dir / dependency_hash(deps)
    ready = env_dir / ".ready"
    envs_dir.mkdir(parents=True, exist_ok=True)
    with open(envs_dir / f"{env_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run with the same set waits, then reuses
        if ready.exists():
            ready.touch()  # its last use: see remove_unused_environments()
            on_log(f"using cached environment {env_dir.name} for {', '.join(deps)}")
        else:
            shutil.rmtree(env_dir, ignore_errors=True)
            on_log(f"building environment {env_dir.name} for {', '.join(deps)}")
            try:
                _build(env_dir, deps, on_log)
            except BaseException:
                shutil.rmtree(env_dir, ignore_errors=True)
                raise
            ready.write_text("\n".join(deps))
    return str(env_dir / "bin" / "python")


# An environment that no feed names and that nothing has used for this long is removed at
# start-up: each holds its packages (often hundreds of megabytes), and a draft makes a new one
# with every change to its dependencies. Two weeks leave a set that is being tried out alone.
UNUSED_FOR_S = 14 * 24 * 3600


def remove_unused_environments(envs_dir: Path, named: Iterable[list[str]], unused_for_s: float = UNUSED_FOR_S,
                               now: float | None = None) -> list[str]:
    """Remove the environments of dependency sets that no feed names (`named`: each feed's
    dependencies) and that no run or test has used for unused_for_s, and builds that never
    finished as long ago. One being built or used right now holds its lock and is left for a
    later start-up. Returns the names (hashes) removed."""
    if not envs_dir.is_dir():
        return []
    keep = {dependency_hash(deps) for deps in named if any(dep.strip() for dep in deps)}
    cutoff = (time.time() if now is None else now) - unused_for_s
    removed = []
    for env_dir in sorted(path for path in envs_dir.iterdir() if path.is_dir()):
        if env_dir.name in keep or _last_used(env_dir) > cutoff:
            continue
        with open(envs_dir / f"{env_dir.name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being built, or a run is starting with it
            if _last_used(env_dir) > cutoff:
                continue  # used while the lock was being taken
            shutil.rmtree(env_dir, ignore_errors=True)
        # The lock file stays: removing it could let two builds of the set run at once.
        removed.append(env_dir.name)
    return removed


def _last_used(env_dir: Path) -> float:
    """When a run or test last used the environment, or when its unfinished build began."""
    for marker in (env_dir / ".ready", env_dir):
        try:
            return os.stat(marker).st_mtime
        except FileNotFoundError:
            continue
    return float("inf")  # removed meanwhile: nothing to do
