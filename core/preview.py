"""Testing a script (the editor's Test button, `core.cli test`): the same sandbox as a run, but
it stops once the preview has its records (unless asked to run to completion) and writes
nothing to any destination or state."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from common.errors import TributaryError
from common.settings import Settings, get_settings
from core.connections import get_connection, sandbox_material
from core.feeds import connection_name, get_feed
from core.preview_schema import destinations_of, detected_schema
from core.run_log import BoundedLines
from core.state import current_state_in
from core.validation import dependency_problems, raise_if
from runners import get_runner
from runners.base import ScriptJob
from storage.db import session_scope


@dataclass
class PreviewResult:
    ok: bool
    status: str
    records: list[dict]
    count: int
    metadata: dict | None
    duration_s: float
    logs: list[str]
    error: str | None = None
    error_line: int | None = None
    # The requests the script made (runners/lib/_inspect.py), secrets masked, and their counts.
    requests: list[dict] = field(default_factory=list)
    request_counts: dict = field(default_factory=dict)
    # The columns the records make, and what a run would do to the feed's tables (core/preview_schema.py).
    schema: dict | None = None


@dataclass
class PreviewRequest:
    script: str
    connection: str | None = None
    dependencies: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    run_to_completion: bool = False
    timeout_s: int | None = None
    memory_limit_mb: int | None = None
    network: bool = True
    feed: str | None = None  # the saved feed tested: its tables' columns are compared with the records'


def read_preview(files: list[Path], limit: int) -> list[dict]:
    records: list[dict] = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                records.append(json.loads(line))
                if len(records) >= limit:
                    return records
    return records


def _schema(records: list[dict], feed: str | None, settings: Settings) -> dict | None:
    try:
        return detected_schema(records, feed, destinations_of(feed), settings)
    except Exception as exc:  # noqa: BLE001 - the detected schema informs; it never fails a test
        return {"records": len(records), "columns": [], "destinations": [], "error": f"{type(exc).__name__}: {exc}"}


def _cancel_when_set(handle, cancel: threading.Event, finished: threading.Event) -> None:
    while not finished.is_set():
        if cancel.wait(0.2):
            handle.cancel()
            return


def preview_script(request: PreviewRequest, on_log: Callable[[str], None] | None = None,
                   settings: Settings | None = None, cancel: threading.Event | None = None) -> PreviewResult:
    """Run a script exactly as a run would, but stop after the preview's records and write
    nothing to any destination or state. Setting `cancel` stops the script (status "cancelled")."""
    settings = settings or get_settings()
    raise_if(dependency_problems(request.dependencies))
    conn = get_connection(request.connection) if request.connection else None
    material, secrets = sandbox_material(conn)
    output = BoundedLines()  # a test run's output, head and tail, however much it prints

    def sink(line: str) -> None:
        output.append(line)
        if on_log:
            on_log(line)

    work_dir = settings.work_root / f"test-{uuid.uuid4().hex[:12]}"
    job = ScriptJob(
        run_id=work_dir.name, feed_name="test", script=request.script, work_dir=work_dir,
        dependencies=request.dependencies, metadata=request.metadata, connection=material,
        record_limit=None if request.run_to_completion else settings.preview_records,
        timeout_s=request.timeout_s or settings.test_timeout_s,
        memory_limit_mb=request.memory_limit_mb or settings.memory_limit_mb, secrets=secrets,
        network=request.network,
    )
    try:
        try:
            handle = get_runner(settings.runner, settings).start(job, sink)
            finished = threading.Event()
            if cancel is not None:
                threading.Thread(target=_cancel_when_set, args=(handle, cancel, finished), daemon=True,
                                 name="tributary-test-cancel").start()
            try:
                outcome = handle.wait()
            finally:
                finished.set()
        except TributaryError as exc:
            return PreviewResult(False, "failed", [], 0, None, 0.0, output.lines(), error=str(exc))
        preview = read_preview(outcome.spool_files(), settings.preview_records)
        return PreviewResult(
            ok=outcome.ok, records=preview,
            status="succeeded" if outcome.ok else "cancelled" if outcome.status == "cancelled" else "failed",
            count=outcome.records, metadata=outcome.metadata, duration_s=round(outcome.duration_s, 3),
            logs=output.lines(), error=outcome.error, error_line=outcome.error_line,
            requests=outcome.requests, request_counts=outcome.request_counts,
            schema=_schema(preview, request.feed, settings),
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def preview_feed(name: str, run_to_completion: bool = False, on_log=None,
                 cancel: threading.Event | None = None) -> PreviewResult:
    feed = get_feed(name)
    with session_scope() as session:
        state = current_state_in(session, feed.id)
    request = PreviewRequest(
        script=feed.script, connection=connection_name(feed), dependencies=list(feed.dependencies),
        metadata=state, run_to_completion=run_to_completion, timeout_s=feed.timeout_s,
        memory_limit_mb=feed.memory_limit_mb, network=feed.network, feed=feed.name,
    )
    return preview_script(request, on_log, cancel=cancel)
