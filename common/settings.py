"""Settings read from the environment, with embedded defaults that work out of the box.

Everything lives under one data dir (default ./data): the SQLite store, the DuckDB warehouse,
run logs, work dirs and dependency environments. get_settings() parses them once per process
and again only when a TRIBUTARY_ variable changed, so that a test (or an operator's script)
changing the environment never sees a stale copy.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


def _env_seconds(name: str, default: float) -> float:
    """A positive number of seconds (a fraction allowed)."""
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw.strip() else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be more than 0 seconds, got {raw!r}")
    return value


def _env_list(name: str) -> tuple[str, ...]:
    """Comma-separated names, blanks dropped."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be on or off (1/0, true/false, yes/no), got {raw!r}")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    runner: str = "subprocess"
    executor: str = "local"  # where queued runs execute (core/executors.py)
    # The celery executor (core/celery_executor.py) and its workers (core/worker.py). No broker
    # URL is an error only where the celery executor is used. worker_queues: the queues a
    # worker consumes (empty: the default queue). celery_resend_s: how long a run sent to the
    # workers may stay unclaimed before it is sent again (doubling each time), in case the
    # broker lost it.
    celery_broker_url: str = field(default="", repr=False)  # may carry the broker's password
    worker_queues: tuple[str, ...] = ()
    celery_resend_s: float = 60.0
    # A running run's lease (core/heartbeat.py): renewed every heartbeat_s; one older than
    # heartbeat_stale_s is a dead process's, when its worker is on another host.
    heartbeat_s: float = 5.0
    heartbeat_stale_s: float = 60.0
    warehouse: str = "local"
    duckdb_path: Path = field(default=Path("data/warehouse.duckdb"))
    parquet_dir: Path = field(default=Path("data/parquet"))
    test_timeout_s: int = 120
    run_timeout_s: int = 3600
    memory_limit_mb: int = 2048
    preview_records: int = 10
    demo_api_port: int = 8765
    max_concurrent_runs: int = 2
    misfire_grace_s: int = 3600
    webhook_rate_per_minute: int = 30
    public_url: str = "http://127.0.0.1:8501"
    # Host names (besides loopback and the public URL's host) that requests may be addressed
    # to: a Host or Origin naming anything else is refused (DNS rebinding, cross-site calls).
    allowed_hosts: tuple[str, ...] = ()
    run_log_limit_mb: int = 50  # a run's log keeps its head and tail past this size
    # Outgoing mail for email watchers; no host means email notifications cannot be sent.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)  # kept out of logs and tracebacks
    smtp_from: str = "tributary@localhost"
    smtp_starttls: bool = False
    # The docker runner (runners/docker_runner.py). docker_network is the network of a feed
    # that has network access: "bridge" keeps the host's loopback services (a local store,
    # the app's own ports) out of reach; "host" lets scripts call APIs served on the host.
    docker_image: str = "tributary-runner:latest"
    docker_ca_bundle: str = ""  # host CA bundle for builds and containers; "" or "none": none
    docker_cpus: float = 1.0
    docker_pids_limit: int = 256
    docker_network: str = "bridge"
    # sandbox: the isolated subprocess runner (runners/sandbox.py) and dependency installs.
    # sandbox_bwrap is the bubblewrap program (a name looked up on PATH, or a path);
    # allow_unisolated lets `subprocess` run scripts without it even when a login is
    # configured; allow_direct_requirements lets feeds install from URLs and files.
    # sandbox_network, for feeds with network: "host" shares the host's network (its loopback
    # included); "private" gives each run its own through slirp4netns, without the host's loopback;
    # "auto" is private when a login is configured (a shared Tributary), else host.
    sandbox_bwrap: str = "bwrap"
    sandbox_network: str = "auto"
    sandbox_pids_limit: int = 256
    sandbox_cpus: float = 1.0
    work_dir_limit_mb: int = 2048
    allow_unisolated: bool = False
    allow_direct_requirements: bool = False

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def work_root(self) -> Path:
        return self.data_dir / "work"

    @property
    def envs_dir(self) -> Path:
        return self.data_dir / "envs"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"


def read_settings() -> Settings:
    """Parse the settings from the environment (the composition root calls this once)."""
    data_dir = Path(os.environ.get("TRIBUTARY_DATA_DIR", "data")).resolve()
    database_url = os.environ.get("TRIBUTARY_DATABASE_URL") or f"sqlite:///{data_dir / 'tributary.db'}"
    duckdb_path = Path(os.environ.get("TRIBUTARY_DUCKDB_PATH") or data_dir / "warehouse.duckdb")
    parquet_dir = Path(os.environ.get("TRIBUTARY_PARQUET_DIR") or data_dir / "parquet")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        runner=os.environ.get("TRIBUTARY_RUNNER", "subprocess"),
        executor=os.environ.get("TRIBUTARY_EXECUTOR") or "local",
        celery_broker_url=os.environ.get("TRIBUTARY_CELERY_BROKER_URL", "").strip(),
        worker_queues=_env_list("TRIBUTARY_WORKER_QUEUES"),
        celery_resend_s=_env_seconds("TRIBUTARY_CELERY_RESEND_S", 60.0),
        heartbeat_s=_env_seconds("TRIBUTARY_HEARTBEAT_S", 5.0),
        heartbeat_stale_s=_env_seconds("TRIBUTARY_HEARTBEAT_STALE_S", 60.0),
        warehouse=os.environ.get("TRIBUTARY_WAREHOUSE", "local"),
        duckdb_path=duckdb_path.resolve(),
        parquet_dir=parquet_dir.resolve(),
        test_timeout_s=_env_int("TRIBUTARY_TEST_TIMEOUT_S", 120),
        run_timeout_s=_env_int("TRIBUTARY_RUN_TIMEOUT_S", 3600),
        memory_limit_mb=_env_int("TRIBUTARY_MEMORY_LIMIT_MB", 2048),
        demo_api_port=_env_int("TRIBUTARY_DEMO_API_PORT", 8765),
        # One run per core by default: scripts are mostly I/O, loads are CPU-bound.
        max_concurrent_runs=_env_int("TRIBUTARY_MAX_CONCURRENT_RUNS", os.cpu_count() or 2),
        misfire_grace_s=_env_int("TRIBUTARY_MISFIRE_GRACE_S", 3600),
        webhook_rate_per_minute=_env_int("TRIBUTARY_WEBHOOK_RATE_PER_MINUTE", 30),
        public_url=os.environ.get("TRIBUTARY_PUBLIC_URL", "http://127.0.0.1:8501"),
        allowed_hosts=tuple(h.strip().lower() for h in os.environ.get("TRIBUTARY_ALLOWED_HOSTS", "").split(",")
                            if h.strip()),
        run_log_limit_mb=_env_int("TRIBUTARY_RUN_LOG_LIMIT_MB", 50),
        docker_image=os.environ.get("TRIBUTARY_DOCKER_IMAGE") or "tributary-runner:latest",
        # Unset: the bundle the app itself trusts, which scripts on the subprocess runner get too.
        docker_ca_bundle=os.environ.get("TRIBUTARY_DOCKER_CA_BUNDLE")
        or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or "",
        docker_cpus=float(os.environ.get("TRIBUTARY_DOCKER_CPUS") or 1.0),
        docker_pids_limit=_env_int("TRIBUTARY_DOCKER_PIDS_LIMIT", 256),
        docker_network=os.environ.get("TRIBUTARY_DOCKER_NETWORK") or "bridge",
        # sandbox
        sandbox_bwrap=os.environ.get("TRIBUTARY_SANDBOX_BWRAP") or "bwrap",
        sandbox_network=os.environ.get("TRIBUTARY_SANDBOX_NETWORK") or "auto",
        sandbox_pids_limit=_env_int("TRIBUTARY_SANDBOX_PIDS_LIMIT", 256),
        sandbox_cpus=float(os.environ.get("TRIBUTARY_SANDBOX_CPUS") or 1.0),
        work_dir_limit_mb=_env_int("TRIBUTARY_WORK_DIR_LIMIT_MB", 2048),
        allow_unisolated=_env_flag("TRIBUTARY_ALLOW_UNISOLATED"),
        allow_direct_requirements=_env_flag("TRIBUTARY_ALLOW_DIRECT_REQUIREMENTS"),
        smtp_host=os.environ.get("TRIBUTARY_SMTP_HOST") or None,
        smtp_port=_env_int("TRIBUTARY_SMTP_PORT", 25),
        smtp_username=os.environ.get("TRIBUTARY_SMTP_USERNAME") or None,
        smtp_password=os.environ.get("TRIBUTARY_SMTP_PASSWORD") or None,
        smtp_from=os.environ.get("TRIBUTARY_SMTP_FROM") or "tributary@localhost",
        smtp_starttls=_env_flag("TRIBUTARY_SMTP_STARTTLS"),
    )


_cache: tuple[tuple, Settings] | None = None


def _environment_key() -> tuple:
    return (os.getcwd(), tuple(sorted((k, v) for k, v in os.environ.items()
                                      if k.startswith("TRIBUTARY_") or k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"))))


def get_settings() -> Settings:
    """The process's settings: parsed once, and again only if the environment they come from
    changed (a test, or an operator's script, setting a TRIBUTARY_ variable)."""
    global _cache
    key = _environment_key()
    cached = _cache
    if cached is not None and cached[0] == key:
        return cached[1]
    settings = read_settings()
    _cache = (key, settings)
    return settings


def make_private(data_dir: Path, tighten_existing: bool = False) -> None:
    """Files and folders this process creates are its user's only (umask 077), and so is the
    data dir: it holds the key, the store, the warehouse and every run's log. With
    `tighten_existing` (the server's start), what an earlier version or another umask left
    there readable by others is tightened too: group and other lose every permission (a file
    0644 becomes 0600, a folder or an environment's executable 0755 becomes 0700). Symbolic
    links are neither followed nor changed."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    if not tighten_existing:
        return
    for root, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            _tighten(os.path.join(root, name))


def _tighten(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            return
        os.chmod(path, stat.S_IMODE(mode) & 0o700)
    except OSError:  # gone meanwhile, or not ours: the umask still covers what we create
        pass
