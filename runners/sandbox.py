"""The sandbox of the `subprocess` runner: bubblewrap, and one cgroup per run.

bubblewrap (Debian's `bubblewrap`) starts the script in namespaces of its own:
- a mount namespace where the system (/usr, the /lib and /bin links, a minimal /etc: name
  resolution, CA certificates, passwd/group) and the Python environment (the app's interpreter
  and virtual environment, or the feed's dependency environment) are read-only, the run's work
  dir is read-write at SANDBOX_WORK_DIR, /tmp is a tmpfs of TMP_SIZE_MB, and nothing else of the
  host exists: not the data dir (store, key, warehouse, logs), not other runs' work dirs;
- its own PID namespace (the script sees only its own processes; when it ends, everything it
  started, daemons included, is killed with it), IPC and UTS namespaces;
- its own network namespace unless the feed has network access (fail closed: no network means
  no --share-net, and only a loopback of its own exists). With network, TRIBUTARY_SANDBOX_NETWORK
  decides: "host" (the default) shares the host's network, loopback services included (see
  "Holes" below); "private" gives the run a namespace of its own connected by slirp4netns
  with the host's loopback disabled (PrivateNetwork), as the docker runner's bridge does;
- a user namespace where the script runs as nobody (uid/gid 65534), which the kernel maps to
  the app's own uid: the app can read and remove what it wrote, and the script holds no
  capability of the host. Where user namespaces are not allowed, the script runs as the app's
  uid with every capability dropped (bwrap's default), and the run log says so;
- a scrubbed environment (--clearenv plus the runner's allow-list), its own session
  (--new-session: no TIOCSTI on the app's terminal) and --die-with-parent.

Limits for the whole run, children included, come from a cgroup of the run's own, created under
the app's own cgroup (cgroup v1 memory, pids and cpu controllers, or cgroup v2 where the app's
cgroup delegates them): memory (no swap on top), processes, CPU. Where a controller cannot be
used, rlimits of each process stand in (address space, CPU time); the number of processes then
is not limited for root, which RLIMIT_NPROC exempts, and the run log says so. The work dir's
size is watched by the runner (runners/subprocess_runner.py) and each file is capped by
RLIMIT_FSIZE.

Holes: with TRIBUTARY_SANDBOX_NETWORK=host, a feed with network access reaches the host's
loopback (a local PostgreSQL store, the app's own port): set it to private, or put such services
behind a password. Dependency installs get the same kind of network as runs, so with "host" a
package's build script can reach loopback services too.
"""

from __future__ import annotations

import functools
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import TributaryError
from common.settings import Settings

SANDBOX_WORK_DIR = "/sandbox/work"
TMP_SIZE_MB = 64
NOBODY = 65534
INSTALL_HINT = "apt-get install bubblewrap"
UNISOLATED_ENV = "TRIBUTARY_ALLOW_UNISOLATED"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_GROUP = "tributary"  # the runs' cgroups: <the app's cgroup>/tributary/<run>
CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
ETC_FILES = ("resolv.conf", "hosts", "host.conf", "nsswitch.conf", "gai.conf", "passwd", "group", "localtime",
             "ssl", "ca-certificates", "ca-certificates.conf", "pki", "mime.types")
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "SSL_CERT_DIR", "PIP_CERT")


class SandboxRefused(TributaryError):
    pass


# ---------------------------------------------------------------- a network of the run's own

NETWORK_AUTO, NETWORK_HOST, NETWORK_PRIVATE = "auto", "host", "private"
SLIRP_HINT = "apt-get install slirp4netns"
SLIRP_DNS = "10.0.2.3"
SLIRP_START_S = 10.0


def _host_resolv_is_loopback() -> bool:
    try:
        servers = [line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines()
                   if line.startswith("nameserver") and len(line.split()) > 1]
    except OSError:
        return False
    return bool(servers) and all(server.startswith("127.") or server == "::1" for server in servers)


class PrivateNetwork:
    """A network namespace of the run's own, connected to the outside by slirp4netns (user-mode
    networking) with the host's loopback disabled: the script reaches the internet and the
    host's other addresses, but not 127.0.0.1 of the host (a local store, the app's port).

    The namespace is made before the sandbox, by a holder process (`unshare --net sleep`),
    slirp4netns connects it, and bwrap starts inside it (through nsenter) with --share-net."""

    def __init__(self, slirp: str, resolv_dir: Path | None):
        self.slirp = slirp
        self._holder: subprocess.Popen | None = None
        self._process: subprocess.Popen | None = None
        self._exit_w: int | None = None
        self._resolv = None
        if resolv_dir is not None and _host_resolv_is_loopback():  # that resolver is out of reach
            resolv_dir.mkdir(parents=True, exist_ok=True)
            self._resolv = resolv_dir / "resolv.conf"
            self._resolv.write_text(f"nameserver {SLIRP_DNS}\n")
            self._resolv.chmod(0o644)

    @property
    def bwrap_args(self) -> list[str]:
        return ["--ro-bind", str(self._resolv), "/etc/resolv.conf"] if self._resolv is not None else []

    def _namespace_made(self, pid: int) -> bool:
        try:
            return os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        except OSError:
            return False

    def open(self, lifetime_s: float) -> list[str]:
        """Make and connect the namespace; the command prefix that starts bwrap inside it. The
        holder outlives an app killed mid-run by lifetime_s at most (slirp4netns stops with
        the app: its exit fd closes)."""
        unshare, nsenter = shutil.which("unshare"), shutil.which("nsenter")
        if not unshare or not nsenter:
            raise TributaryError("sandbox: a private network needs unshare and nsenter (util-linux)")
        self._holder = subprocess.Popen([unshare, "--net", "--", "sleep", f"{lifetime_s:.0f}"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        pid = self._holder.pid
        deadline = time.monotonic() + SLIRP_START_S
        while not self._namespace_made(pid):
            if self._holder.poll() is not None or time.monotonic() > deadline:
                raise TributaryError("sandbox: could not make the run's network namespace (unshare --net)")
            time.sleep(0.001)
        ready_r, ready_w = os.pipe()
        exit_r, self._exit_w = os.pipe()
        with tempfile.TemporaryFile() as errors:
            try:
                self._process = subprocess.Popen(
                    [self.slirp, "--configure", "--mtu=65520", "--disable-host-loopback", f"--ready-fd={ready_w}",
                     f"--exit-fd={exit_r}", str(pid), "tap0"],
                    pass_fds=(ready_w, exit_r), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=errors, start_new_session=True)
            finally:
                os.close(ready_w)
                os.close(exit_r)
            try:
                if not select.select([ready_r], [], [], SLIRP_START_S)[0] or os.read(ready_r, 1) != b"1":
                    errors.seek(0)
                    detail = errors.read(4096).decode("utf-8", "replace").strip().replace("\n", " | ")
                    raise TributaryError(f"sandbox: slirp4netns could not connect the run's network: "
                                         f"{detail or 'no output'}")
            finally:
                os.close(ready_r)
        return [nsenter, f"--net=/proc/{pid}/ns/net", "--"]

    def close(self) -> None:
        """After the run (or a failed start): stop slirp4netns and the namespace's holder."""
        if self._exit_w is not None:
            os.close(self._exit_w)  # slirp4netns exits once this closes
            self._exit_w = None
        for name in ("_process", "_holder"):
            process = getattr(self, name)
            if process is None:
                continue
            setattr(self, name, None)
            if name == "_holder":
                process.kill()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def network_mode(settings: Settings) -> str:
    """The network of runs with network: `auto` (the default) is private when Tributary is
    shared behind a login, where the host's loopback (a PostgreSQL store, the app's own port)
    must stay out of other people's scripts' reach, and the host's on one person's machine,
    where feeds call APIs on 127.0.0.1 (the demo API)."""
    mode = settings.sandbox_network.strip().lower() or NETWORK_AUTO
    if mode == NETWORK_AUTO:
        return NETWORK_PRIVATE if login_configured() else NETWORK_HOST
    return mode


def private_network(settings: Settings) -> tuple[str | None, str | None]:
    """(slirp4netns path, problem) when feeds with network get a network of their own."""
    mode = network_mode(settings)
    if mode not in (NETWORK_HOST, NETWORK_PRIVATE):
        return None, f"TRIBUTARY_SANDBOX_NETWORK must be {NETWORK_AUTO}, {NETWORK_HOST} or {NETWORK_PRIVATE}, " \
                     f"not {settings.sandbox_network!r}"
    if mode != NETWORK_PRIVATE:
        return None, None
    slirp = shutil.which("slirp4netns")
    if slirp is None:
        return None, f"TRIBUTARY_SANDBOX_NETWORK=private needs slirp4netns ({SLIRP_HINT})"
    return slirp, None


# ---------------------------------------------------------------- bubblewrap


def find_bwrap(settings: Settings) -> str | None:
    configured = settings.sandbox_bwrap.strip() or "bwrap"
    if os.sep in configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which(configured)


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str) -> tuple[str | None, bool, str | None]:
    """(version, user namespaces usable, problem) of a bubblewrap binary, tried once per process."""
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return None, False, f"bubblewrap at {bwrap} does not start: {exc}"
    problem = None
    for userns in (True, False):  # the very command line runs get, so that what works here works there
        command = bwrap_command(bwrap, userns, ["true"], rw=[], ro=[], env={"PATH": "/usr/bin:/bin"},
                                network=False, chdir="/")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as exc:
            return version, False, f"bubblewrap at {bwrap} does not start: {exc}"
        if done.returncode == 0:
            return version or "bubblewrap", userns, None
        problem = (done.stderr.strip() or f"exit code {done.returncode}").splitlines()[-1]
    return version, False, f"bubblewrap cannot create a sandbox here: {problem}"


def system_binds() -> list[str]:
    """The read-only system every sandbox gets."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _read_only(paths: list[Path | str]) -> list[str]:
    """Read-only binds of each path at its own place (and at its real place, when it is reached
    through a symlink: a virtual environment's interpreter links to its base's)."""
    args: list[str] = []
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            continue
        for place in (str(path.absolute()), os.path.realpath(path)):
            if place in seen or place.startswith(("/usr/", "/etc/")) or place == "/usr":
                continue
            seen.add(place)
            args += ["--ro-bind", os.path.realpath(path), place]
    return args


def python_paths(python: str) -> list[Path]:
    """What an interpreter needs to start: the app's environment and its base installation,
    and, for a dependency environment, that environment (its .pth names the app's packages)."""
    paths = [Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix)]
    env_dir = Path(python).parent.parent
    if env_dir.resolve() != Path(sys.prefix).resolve():
        paths.append(env_dir)
    return paths


def ca_paths(env: dict[str, str]) -> list[Path]:
    return [Path(env[name]) for name in CA_VARIABLES if env.get(name)]


def bwrap_command(bwrap: str, userns: bool, argv: list[str], *, rw: list[tuple[str, str]], ro: list[Path | str],
                  env: dict[str, str], network: bool, chdir: str, tmp_mb: int = TMP_SIZE_MB,
                  extra: list[str] | None = None) -> list[str]:
    """The bubblewrap command line that runs argv in a sandbox (see the module docstring).
    rw: (host path, sandbox path) read-write binds; ro: host paths bound read-only in place;
    network: share the host's; extra: more bwrap options (a PrivateNetwork's)."""
    command = [bwrap, *system_binds(), "--proc", "/proc", "--dev", "/dev",
               "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]  # before binds that may lie under /tmp
    command += _read_only(ro)
    for host, inside in rw:
        command += ["--bind", host, inside]
    command += ["--chdir", chdir, "--unshare-all"]
    if network:
        command.append("--share-net")
    if userns:
        command += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--disable-userns"]
    command += ["--hostname", "tributary-sandbox", "--cap-drop", "ALL", "--die-with-parent", "--new-session",
                "--clearenv"]
    for name, value in sorted(env.items()):
        command += ["--setenv", name, value]
    return [*command, *(extra or []), "--", *argv]


# ---------------------------------------------------------------- who may run unisolated


def login_configured() -> bool:
    """Whether Tributary is shared behind a login (a team password or OIDC): the same
    configuration app_pages/access.py reads, from the environment and secrets.toml."""
    if os.environ.get("TRIBUTARY_PASSWORD_HASH"):
        return True
    for folder in (Path.cwd() / ".streamlit", Path.home() / ".streamlit"):
        try:
            secrets = tomllib.loads((folder / "secrets.toml").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        access, auth = secrets.get("access") or {}, secrets.get("auth") or {}
        if isinstance(access, dict) and access.get("password_hash"):
            return True
        if isinstance(auth, dict) and (auth.get("client_id") or any(
                isinstance(v, dict) and v.get("client_id") for v in auth.values())):
            return True
    return False


# ---------------------------------------------------------------- cgroups


def _own_cgroups() -> dict[str, Path]:
    """The app's own cgroup directory per controller we use (cgroup v1), or {"": dir} (v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        path = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
        return {"": CGROUP_ROOT / path.lstrip("/")} if path is not None else {}
    found = {}
    for line in lines:
        _, names, path = line.split(":", 2)
        for controller in names.split(","):
            if controller not in CONTROLLERS:
                continue
            for mount in (CGROUP_ROOT / names, CGROUP_ROOT / controller):
                if (mount / "cgroup.procs").exists():
                    found[controller] = mount / path.lstrip("/")
                    break
    return found


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def _group_dirs() -> tuple[dict[str, Path], str]:
    """The directories runs' cgroups go in, per controller ("" for v2), and the version name.
    Creates <own cgroup>/tributary; leaves out a controller that is not delegated to us."""
    own = _own_cgroups()
    if "" in own:
        group = own[""] / CGROUP_GROUP
        try:
            group.mkdir(exist_ok=True)
        except OSError:
            return {}, "cgroup v2"
        enabled = []
        for controller in CONTROLLERS:
            _write(own[""] / "cgroup.subtree_control", f"+{controller}")
            if _write(group / "cgroup.subtree_control", f"+{controller}"):
                enabled.append(controller)
        return ({controller: group for controller in enabled}, "cgroup v2")
    dirs = {}
    for controller, path in own.items():
        try:
            (path / CGROUP_GROUP).mkdir(exist_ok=True)
        except OSError:
            continue
        dirs[controller] = path / CGROUP_GROUP
    return dirs, "cgroup"


@dataclass
class RunCgroup:
    """One run's cgroup (one directory per v1 controller, or one v2 directory)."""

    dirs: dict[str, Path]
    v2: bool
    procs_fds: list[int] = field(default_factory=list)

    @classmethod
    def create(cls, name: str, memory_mb: int, pids: int, cpus: float) -> "RunCgroup | None":
        groups, version = _group_dirs()
        if not groups:
            return None
        v2 = version == "cgroup v2"
        made: dict[str, Path] = {}
        for controller, group in groups.items():
            path = group / name
            try:
                path.mkdir(exist_ok=True)
            except OSError:
                continue
            made[controller] = path
        cgroup = cls(made, v2)
        cgroup._limit(memory_mb, pids, cpus)
        return cgroup if cgroup.dirs else None

    def _limit(self, memory_mb: int, pids: int, cpus: float) -> None:
        memory, quota = str(memory_mb * 1024 * 1024), int(cpus * CPU_PERIOD_US)
        wanted = {
            "memory": [("memory.max", memory), ("memory.swap.max", "0")] if self.v2 else
            [("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memory)],
            "pids": [("pids.max", str(pids))],
            "cpu": [("cpu.max", f"{quota} {CPU_PERIOD_US}")] if self.v2 else
            [("cpu.cfs_period_us", str(CPU_PERIOD_US)), ("cpu.cfs_quota_us", str(quota))],
        }
        for controller in list(self.dirs):
            path = self.dirs[controller]
            first, *rest = wanted[controller]
            if not _write(path / first[0], first[1]):
                self.dirs.pop(controller)  # this one does not hold: rlimits stand in
                continue
            for name, value in rest:  # memsw exists only with swap accounting; no swap, no need
                _write(path / name, value)

    @property
    def controllers(self) -> set[str]:
        return set(self.dirs)

    def open_procs(self) -> None:
        """Open each cgroup.procs before the fork: the child only writes its pid (join_self)."""
        for path in {str(p) for p in self.dirs.values()}:
            self.procs_fds.append(os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC))

    def join_self(self) -> None:
        """In the child, between fork and exec: everything it starts stays in the cgroup."""
        pid = str(os.getpid()).encode()
        for fd in self.procs_fds:
            os.write(fd, pid)

    def close_procs(self) -> None:
        for fd in self.procs_fds:
            os.close(fd)
        self.procs_fds.clear()

    def _events(self, controller: str, name: str, key: str) -> int:
        path = self.dirs.get(controller)
        if path is None:
            return 0
        try:
            for line in (path / name).read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
        except (OSError, ValueError):
            pass
        return 0

    def out_of_memory(self) -> bool:
        if self.v2:
            return self._events("memory", "memory.events", "oom_kill") > 0
        return self._events("memory", "memory.oom_control", "oom_kill") > 0

    def process_limit_hit(self) -> bool:
        return self._events("pids", "pids.events", "max") > 0

    def remove(self) -> None:
        """Kill whatever is left in it and remove it. The kernel may take a moment to let go of
        processes just killed: the directory is then removed in the background, so that the
        run's outcome does not wait for it (start-up removes any that a crash left)."""
        self.close_procs()
        for path in set(self.dirs.values()):
            if not remove_cgroup(path, wait_s=0):
                threading.Thread(target=remove_cgroup, args=(path,), name=f"rmdir-{path.name}", daemon=True).start()


def _procs(path: Path) -> list[int]:
    try:
        return [int(pid) for pid in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def remove_cgroup(path: Path, kill: bool = True, wait_s: float = 5.0) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        pids = _procs(path)
        if pids and not kill:
            return False
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def remove_leftover_cgroups() -> list[str]:
    """For start-up: remove the empty cgroups of runs whose app process died before removing
    them. A cgroup with processes in it belongs to a run still going (another process of the
    app may share our cgroup) and is left alone. Returns the names removed."""
    removed = []
    for group in {p for p in _group_dirs()[0].values()}:
        try:
            children = [child for child in group.iterdir() if child.is_dir()]
        except OSError:
            continue
        for child in children:
            if remove_cgroup(child, kill=False, wait_s=0):
                removed.append(child.name)
    return sorted(set(removed))


def cgroup_name(run_id: str) -> str:
    return f"{run_id}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- limits and status


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    pids: int
    cpus: float
    work_dir_mb: int
    timeout_s: float


def rlimits_for(limits: Limits, cgroup_controllers: set[str]) -> list[tuple[int, int]]:
    """The rlimits each process of the run gets: stand-ins for what no cgroup holds, and a cap
    on any one file's size."""
    values = [(resource.RLIMIT_FSIZE, limits.work_dir_mb * 1024 * 1024), (resource.RLIMIT_CORE, 0)]
    if "memory" not in cgroup_controllers:
        values.append((resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024))
    if "pids" not in cgroup_controllers and os.geteuid() != 0:  # root is exempt from it anyway
        # It counts every task of the user, the app's included: the run may start `pids` more.
        values.append((resource.RLIMIT_NPROC, _user_tasks() + limits.pids))
    if "cpu" not in cgroup_controllers:
        values.append((resource.RLIMIT_CPU, int(limits.timeout_s * max(limits.cpus, 0.01)) + 5))
    return values


def _user_tasks() -> int:
    """Tasks (threads) whose real uid is ours: what RLIMIT_NPROC counts."""
    uid, count = str(os.getuid()), 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        if fields.get("Uid", "").split()[:1] == [uid]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def apply_rlimits(values: list[tuple[int, int]]) -> None:
    for which, value in values:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass  # a hard limit already lower stays


def describe_limits(limits: Limits, controllers: set[str], version: str = "cgroup") -> list[str]:
    """The limits as the run log's first line names them."""
    root = os.geteuid() == 0
    parts = [f"memory {limits.memory_mb} MB " + (f"per run ({version})" if "memory" in controllers else
                                                 "per process (rlimit; no cgroup: children each get as much)")]
    if "pids" in controllers:
        parts.append(f"processes {limits.pids} ({version})")
    elif root:
        parts.append("processes not limited (no cgroup, and RLIMIT_NPROC does not hold for root)")
    else:
        parts.append(f"processes {limits.pids} more than the user already has (rlimit; no cgroup)")
    parts.append(f"CPU {limits.cpus:g} ({version})" if "cpu" in controllers else
                 f"CPU time {int(limits.timeout_s * max(limits.cpus, 0.01)) + 5} s per process (rlimit)")
    parts.append(f"work dir {limits.work_dir_mb} MB")
    return parts


@dataclass(frozen=True)
class IsolationStatus:
    """What the `subprocess` runner's sandbox is here, for the Settings page and /api/health."""

    isolated: bool
    how: str  # "bubblewrap 0.8.0, user namespace (runs as nobody)", or "not isolated"
    limits: str  # "memory, processes and CPU per run (cgroup)", or which rlimits stand in
    problem: str | None = None  # why not isolated, or which limit does not hold
    network: str = ""  # what feeds with network access get

    def as_dict(self) -> dict:
        return {"isolated": self.isolated, "how": self.how, "limits": self.limits, "problem": self.problem,
                "network": self.network}


def bwrap_available(settings: Settings) -> tuple[str | None, bool, str | None]:
    """(bwrap path, user namespaces usable, problem): the problem says why not isolated."""
    bwrap = find_bwrap(settings)
    if bwrap is None:
        where = f" at {settings.sandbox_bwrap}" if os.sep in settings.sandbox_bwrap else ""
        return None, False, f"bubblewrap is not installed{where} ({INSTALL_HINT})"
    version, userns, problem = _probe(bwrap)
    return (None if problem else bwrap), userns, problem


def isolation_status(settings: Settings) -> IsolationStatus:
    bwrap, userns, problem = bwrap_available(settings)
    groups, version = _group_dirs()
    held = [c for c in CONTROLLERS if c in groups]
    if held:
        limits = f"{', '.join(held)} per run ({version})"
        missing = [c for c in CONTROLLERS if c not in groups]
        if missing:
            limits += f"; {', '.join(missing)} by rlimits"
    else:
        limits = "rlimits per process (no cgroup can be created here)"
    slirp, network_problem = private_network(settings)
    network = network_problem or ("a network of each run's own (slirp4netns), without the host's loopback" if slirp
                                  else "the host's network, its loopback included (TRIBUTARY_SANDBOX_NETWORK=host)")
    if bwrap is None:
        return IsolationStatus(False, "not isolated", limits, problem, "the host's network")
    version_text = _probe(bwrap)[0] or "bubblewrap"
    who = "user namespace, runs as nobody" if userns else "runs as the app's user, capabilities dropped " \
                                                        "(user namespaces are not allowed here)"
    return IsolationStatus(True, f"{version_text}, {who}", limits,
                           network_problem or (None if held else "no cgroup: limits hold per process only"), network)


def refuse_unisolated(settings: Settings, problem: str) -> None:
    """Running unisolated is refused when Tributary is shared behind a login, unless allowed."""
    if login_configured() and not settings.allow_unisolated:
        raise SandboxRefused(
            f"sandbox: refusing to run the script unisolated: {problem}. Tributary has a login "
            f"configured, so other people's scripts would run with the app's access; install "
            f"bubblewrap, or set {UNISOLATED_ENV}=1 to accept that"
        )
