"""The store's tables. Secrets live only in `Connection.secrets_encrypted` (Fernet)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from common.clock import utcnow


class Connection(SQLModel, table=True):
    __tablename__ = "connections"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=50)
    auth_type: str = Field(max_length=16)  # none | basic | custom
    # Non-secret parameters: username, auth URL, header names, token path, header template.
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secrets_encrypted: Optional[str] = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Feed(SQLModel, table=True):
    __tablename__ = "feeds"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=50)
    connection_id: Optional[int] = Field(default=None, foreign_key="connections.id")
    script: str = Field(sa_column=Column(Text, nullable=False))
    dependencies: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    load_type: str = Field(default="incremental", max_length=32)
    primary_key: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    destinations: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    trigger: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    tags: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    paused: bool = False
    timeout_s: Optional[int] = None
    memory_limit_mb: Optional[int] = None
    retries: int = 0  # extra attempts after a failed run
    retry_backoff_s: int = 60  # wait before the first retry; doubles for each next one
    max_rejected_ratio: float = 0.0  # share of rows a destination may reject before the run fails
    # evolve | freeze | discard_new_columns: what a run whose records do not fit the table does
    # (storage/destinations/base.py SCHEMA_POLICIES)
    schema_policy: str = Field(default="evolve", max_length=24)
    network: bool = True  # False: the script runs with no network (where the runner can enforce it)
    queue: Optional[str] = Field(default=None, max_length=64)  # the workers' queue (core/queues.py); None: default
    webhook_token_hash: Optional[str] = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    __tablename__ = "runs"

    id: str = Field(primary_key=True, max_length=32)
    feed_id: Optional[int] = Field(default=None, index=True)
    feed_name: str = Field(index=True, max_length=50)
    kind: str = Field(default="run", max_length=8)  # run | test
    trigger: str = Field(default="manual", max_length=32)
    status: str = Field(default="queued", index=True, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    loading_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    records_written: int = 0
    records_loaded: int = 0
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    error_line: Optional[int] = None
    log_path: Optional[str] = None
    state_before: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    state_after: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    destination_results: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The run's change to its tables, per destination (schema.SchemaPlan.diff, with "rejected"
    # and "reasons"); NULL when no table changed and no record was rejected: the schema history.
    schema_changes: Optional[dict] = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    trigger_payload: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    cancel_requested: bool = False
    worker: Optional[str] = Field(default=None, max_length=128)  # host:pid running it
    # The worker's lease on the run: renewed every few seconds while it executes (core/heartbeat.py);
    # one older than TRIBUTARY_HEARTBEAT_STALE_S marks a run of another host's worker as left by a dead process.
    heartbeat_at: Optional[datetime] = None
    attempt: int = 1
    parent_run_id: Optional[str] = Field(default=None, max_length=32)
    not_before: Optional[datetime] = None  # a retry waits until then
    scheduled_for: Optional[datetime] = None  # the schedule fire this run answers
    # The run's outcome while it commits (two-phase, see core/execution.py): recorded before
    # the first destination commits, cleared when the run ends. Holds the new state, the
    # counts, the destinations to load and the kept spool, so that recovery can finish or
    # fail the run from the destinations' ledgers if the process dies meanwhile.
    pending_outcome: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    # The run's committed checkpoints (metadata.checkpoint), oldest first: {"number", "at",
    # "records" (written so far), "loaded" (rows it loaded), "state", "results"}.
    checkpoints: Optional[list] = Field(default=None, sa_column=Column(JSON))
    # A run's own options (core/runs.py RunOptions): a backfill's starting state and whether
    # it becomes current, or a full refresh (from {}, replacing the table at the commit).
    options: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    # What kills the run's sandbox if its process dies (runners/leftovers.py): pgid:N, container:ID.
    sandbox_ref: Optional[str] = Field(default=None, max_length=100)
    # The script's HTTP requests (the request inspector): requests, retries, waits, waited_s, bytes...
    request_counts: Optional[dict] = Field(default=None, sa_column=Column(JSON))


class ActiveRun(SQLModel, table=True):
    """One row per feed with a run in progress: the primary key makes 'one active run per
    feed' hold even when two processes start a run at the same moment."""

    __tablename__ = "active_runs"

    feed_id: int = Field(primary_key=True)
    run_id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class RunLogChunk(SQLModel, table=True):
    """A piece of a run's log, as the worker executing it shipped it (core/log_chunks.py), so
    that the app shows the log wherever the run executed. The chunks of a run, in `seq` order,
    are its log file's bytes: [byte_start, byte_end) of them. They go with their run, and with
    their feed (as its run history does)."""

    __tablename__ = "run_log_chunks"

    run_id: str = Field(primary_key=True, max_length=32, foreign_key="runs.id", ondelete="CASCADE")
    seq: int = Field(primary_key=True)
    feed_id: int = Field(index=True, foreign_key="feeds.id", ondelete="CASCADE")
    byte_start: int = Field(sa_column=Column(BigInteger, nullable=False))  # a log without a limit may pass 2 GB
    byte_end: int = Field(sa_column=Column(BigInteger, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class FeedState(SQLModel, table=True):
    """The feed's metadata history: one row per successful run that committed a state
    (or per reset). The feed's current state is its newest row."""

    __tablename__ = "feed_states"
    __table_args__ = (UniqueConstraint("feed_id", "run_id", name="uq_feed_state_run"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    feed_id: int = Field(index=True, foreign_key="feeds.id", ondelete="CASCADE")
    run_id: Optional[str] = Field(default=None, max_length=32)
    state: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    reason: str = Field(default="run", max_length=16)  # run | checkpoint | reset | edit | rewind | import
    created_at: datetime = Field(default_factory=utcnow)
    changed_by: Optional[str] = Field(default=None, max_length=200)  # who, for a change by hand
    note: Optional[str] = Field(default=None, max_length=500)  # why, for a change by hand


class ScheduleSlot(SQLModel, table=True):
    """The next fire of a scheduled feed. Claiming a fire is a conditional update of this row
    (only if next_fire_at still holds the fire's time), so one fire starts one run even when
    several app processes share the store."""

    __tablename__ = "schedules"

    feed_id: int = Field(primary_key=True, foreign_key="feeds.id", ondelete="CASCADE")
    next_fire_at: Optional[datetime] = Field(default=None, index=True)  # None: nothing left to fire
    last_fire_at: Optional[datetime] = None
    last_outcome: Optional[str] = Field(default=None, max_length=200)  # started run id, or why skipped
    updated_at: datetime = Field(default_factory=utcnow)


class Watcher(SQLModel, table=True):
    """Tells people or systems about a feed's runs: by email or by an HTTP POST."""

    __tablename__ = "watchers"

    id: Optional[int] = Field(default=None, primary_key=True)
    feed_id: int = Field(index=True, foreign_key="feeds.id", ondelete="CASCADE")
    events: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    channel: str = Field(max_length=16)  # email | webhook
    target: str = Field(max_length=500)  # an address or a URL
    longer_than_minutes: Optional[int] = None
    created_at: datetime = Field(default_factory=utcnow)


class Delivery(SQLModel, table=True):
    """One notification of one watcher about one run, with its attempts."""

    __tablename__ = "deliveries"

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=32)
    watcher_id: int
    event: str = Field(max_length=32)
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    worker: Optional[str] = Field(default=None, max_length=128)  # host:pid sending it
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WorkerPresence(SQLModel, table=True):
    """A worker process (core/worker.py) that says it is alive: renewed every few seconds by
    the worker itself (core/workers.py), removed when it stops. Readers show the workers seen
    lately, their queues and their load (runs executing / runs at a time)."""

    __tablename__ = "workers"

    id: str = Field(primary_key=True, max_length=128)  # common/process.py worker_id(): what its runs record
    name: str = Field(max_length=200)  # the Celery node name
    host: str = Field(max_length=128)
    pid: int
    queues: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    concurrency: int = 1
    running: int = 0
    version: Optional[str] = Field(default=None, max_length=40)
    started_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow, index=True)
