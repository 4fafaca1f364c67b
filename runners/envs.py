"""Python environments for feed dependencies, cached by the hash of the dependency list.

The first run of a dependency set builds a virtual environment with uv (pip as a fallback),
streaming the installer's output to the run's log; later runs reuse it. A file lock makes two
runs that need the same new set build it once. The app's own packages (requests, orjson...)
stay importable through a .pth file placed last on sys.path, so the script's own pins win.
Each use touches the environment's .ready file, so that remove_unused_environments() can tell
a set still in use from one that every feed and draft has moved away from.

Given a `wrap` (the isolated runner's), the installer runs in a sandbox too: network on (the
run's kind: TRIBUTARY_SANDBOX_NETWORK), the environment being built read-write, nothing else of the data dir visible, a scrubbed
environment (proxies, CA bundles and the package index settings only). Requirements that
install from a URL or a file (`name @ https://...`, `name @ file:///...`, bare paths or URLs,
pip options such as -e or --index-url) are refused, naming the requirement, unless
TRIBUTARY_ALLOW_DIRECT_REQUIREMENTS=1: they would let a feed install code from anywhere the app
can reach, the app's own disk included.
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
from typing import Callable, ContextManager, Iterable

from common.errors import TributaryError
from runners.base import MAX_LINE_BYTES

# The installer's environment in a sandbox: what finds packages and reaches them, nothing else.
INSTALL_ENV = {
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX",
    "UV_INDEX", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT", "PIP_DEFAULT_TIMEOUT",
}
DIRECT_ENV = "TRIBUTARY_ALLOW_DIRECT_REQUIREMENTS"
# A name like these is a file to the installer, not a package of the index.
ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".egg")

# wrap(argv, env_dir, env): a context manager giving the command that runs argv in a sandbox
# (and holding what that sandbox needs, such as its network, until the command has ended)
Wrap = Callable[[list[str], Path, dict], ContextManager[list[str]]]


class DependencyInstallError(TributaryError):
    pass


def direct_requirement_problem(requirement: str) -> str | None:
    """Why a requirement is refused as installing from a URL, a file or with pip options."""
    text = requirement.strip()
    if text.startswith("-"):
        return f"{text!r} is a pip option, not a package (options such as -e, -r, --index-url are not allowed)"
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging comes with pip, setuptools and the app
        Requirement = None
    if Requirement is not None:
        try:
            parsed = Requirement(text)
        except InvalidRequirement:
            parsed = None
        if parsed is not None and not parsed.url and not parsed.name.lower().endswith(ARCHIVE_SUFFIXES) \
                and parsed.name not in (".", ".."):
            return None
    elif not any(sign in text for sign in ("@", "/", "\\", ":")):
        return None
    return (f"{text!r} installs from a URL or a file, not from the package index; set {DIRECT_ENV}=1 to "
            "allow such requirements")


def check_requirements(dependencies, allow_direct: bool = False) -> list[str]:
    """The requirements, stripped; DependencyInstallError naming the first refused one."""
    if isinstance(dependencies, (str, bytes)):
        raise DependencyInstallError(
            "dependencies must be a list of requirements (one per entry), not a single text: "
            f"{dependencies!r}")
    deps = [str(dep).strip() for dep in dependencies if str(dep).strip()]
    if not allow_direct:
        for dep in deps:
            problem = direct_requirement_problem(dep)
            if problem:
                raise DependencyInstallError(f"dependency refused: {problem}")
    return deps


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


def _stream(cmd: list[str], on_log: Callable[[str], None], env: dict | None = None,
            cwd: Path | None = None) -> tuple[int, list[str]]:
    tail: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          env=env, cwd=cwd) as process:
        while raw := process.stdout.readline(MAX_LINE_BYTES):  # cut, as a script's
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            on_log(line)
            tail = (tail + [line])[-15:]
        return process.wait(), tail


def _install_env(env_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name in INSTALL_ENV}
    cache = env_dir / ".install-cache"
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", HOME=str(cache), UV_CACHE_DIR=str(cache / "uv"),
               TMPDIR=str(cache / "tmp"), PIP_CACHE_DIR=str(cache / "pip"), UV_NO_CONFIG="1",
               PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", LANG="C.UTF-8")
    return env


def _build(env_dir: Path, dependencies: list[str], on_log: Callable[[str], None], wrap: Wrap | None = None) -> None:
    if wrap is None:
        _build_in(env_dir, dependencies, on_log, lambda cmd: _stream(cmd, on_log), allow_existing=False)
        return
    env = _install_env(env_dir)
    (env_dir / ".install-cache" / "tmp").mkdir(parents=True)
    outer_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # bwrap's own; the installer's is env

    def run(cmd: list[str]) -> tuple[int, list[str]]:
        with wrap(cmd, env_dir, env) as wrapped:
            return _stream(wrapped, on_log, outer_env, env_dir)

    try:
        _build_in(env_dir, dependencies, on_log, run, allow_existing=True)
    finally:
        shutil.rmtree(env_dir / ".install-cache", ignore_errors=True)


def _build_in(env_dir: Path, dependencies: list[str], on_log: Callable[[str], None],
              run: Callable[[list[str]], tuple[int, list[str]]], allow_existing: bool) -> None:
    uv = _uv_binary()
    python = env_dir / "bin" / "python"
    if uv:
        create = [uv, "venv", "--quiet", *(["--allow-existing"] if allow_existing else []),
                  "--python", sys.executable, str(env_dir)]
        install = [uv, "pip", "install", "--python", str(python), *dependencies]
    else:
        create = [sys.executable, "-m", "venv", str(env_dir)]
        install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *dependencies]
    code, tail = run(create)
    if code != 0:
        raise DependencyInstallError("could not create the environment:\n" + "\n".join(tail))
    site = Path(sysconfig.get_paths(vars={"base": str(env_dir), "platbase": str(env_dir)})["purelib"])
    site.mkdir(parents=True, exist_ok=True)
    app_site = sysconfig.get_paths()["purelib"]
    _write_marker(site / "zzz_tributary_app_site.pth", app_site + "\n")
    on_log(f"$ installing {' '.join(dependencies)}")
    code, tail = run(install)
    if code != 0:
        raise DependencyInstallError("installing the dependencies failed:\n" + "\n".join(tail))


def _write_marker(path: Path, text: str) -> None:
    """Write a file of the environment, never through a symlink planted there by an install."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def ensure_environment(envs_dir: Path, dependencies: list[str], on_log: Callable[[str], None],
                       allow_direct: bool = False, wrap: Wrap | None = None) -> str:
    """The interpreter to run the script with: the app's own when there are no dependencies.
    wrap, given, runs the installer in a sandbox (see the module docstring)."""
    deps = check_requirements(dependencies, allow_direct)
    if not deps:
        return sys.executable
    env_dir = envs_dir / dependency_hash(deps)
    ready = env_dir / ".ready"
    envs_dir.mkdir(parents=True, exist_ok=True)
    with open(envs_dir / f"{env_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run with the same set waits, then reuses
        if ready.exists():
            os.utime(ready, follow_symlinks=False)  # its last use: see remove_unused_environments()
            on_log(f"using cached environment {env_dir.name} for {', '.join(deps)}")
        else:
            shutil.rmtree(env_dir, ignore_errors=True)
            on_log(f"building environment {env_dir.name} for {', '.join(deps)}")
            try:
                _build(env_dir, deps, on_log, wrap)
            except BaseException:
                shutil.rmtree(env_dir, ignore_errors=True)
                raise
            _write_marker(ready, "\n".join(deps))
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
