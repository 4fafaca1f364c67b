"""The Runner interface: where a feed's script executes.

A runner gets a ScriptJob (the script, its dependencies, the input state, the connection's
auth material and limits), prepares a work dir with the `lib` package, starts the script in a
separate process or container, streams its output line by line to a callback, and returns a
ScriptOutcome read from files the sandbox wrote. Runners never touch the store or a warehouse:
the core decides what an outcome means (see core/runs.py).

Work dir contract, the same for every runner (paths relative to the work dir):
    script.py           the user's script, unmodified
    lib/                the `lib` package the script imports (copied from runners/lib)
    _tributary_boot.py  the harness that runs script.py and reports the outcome
    input.json          {"metadata", "connection", "trigger", "record_limit", "secrets", "checkpoints"}
    out/spool/          part-00000.jsonl, part-00001.jsonl, ... (one JSON object per line),
                        each written as part-NNNNN.jsonl.partial and renamed once complete
                        (see runners/parts.py)
    out/metadata.json   the last object passed to metadata.save(), if any
    out/result.json     {"status", "records", "error", "error_type", "error_line"}
    out/checkpoints/    NNNN.json from metadata.checkpoint(), answered by the host's NNNN.ack
                        (see runners/checkpoints.py)
"""

from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from common.secrets import mask

LIB_SOURCE = Path(__file__).resolve().parent / "lib"
BOOT_SOURCE = Path(__file__).resolve().parent / "boot.py"

LogSink = Callable[[str], None]


@dataclass
class ScriptJob:
    run_id: str
    feed_name: str
    script: str
    work_dir: Path
    dependencies: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    connection: Optional[dict] = None  # {"auth_type", "params", "secrets"} for lib.connection
    trigger_payload: Optional[dict] = None
    record_limit: Optional[int] = None  # a test stops once this many records are written
    timeout_s: float = 3600
    memory_limit_mb: int = 2048
    network: bool = True
    secrets: list[str] = field(default_factory=list)  # masked in every line of output
    checkpoints: bool = False  # metadata.checkpoint() commits (a run); False: a test, it writes nothing


@dataclass
class ScriptOutcome:
    status: str  # succeeded | failed | cancelled | timeout
    records: int = 0
    metadata: Optional[dict] = None  # None when the script never called metadata.save
    error: Optional[str] = None
    error_line: Optional[int] = None
    exit_code: Optional[int] = None
    duration_s: float = 0.0
    spool_dir: Optional[Path] = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def spool_files(self) -> list[Path]:
        if not self.spool_dir or not self.spool_dir.exists():
            return []
        return sorted(self.spool_dir.glob("part-*.jsonl"))


class RunHandle(ABC):
    """A started script: wait for it, or cancel it from another thread."""

    @abstractmethod
    def wait(self) -> ScriptOutcome: ...

    @abstractmethod
    def cancel(self) -> None: ...


class Runner(ABC):
    name: str = ""

    @abstractmethod
    def start(self, job: ScriptJob, on_log: LogSink) -> RunHandle:
        """Start the script; on_log receives each line of output, secrets already masked."""

    def check(self) -> None:
        """Raise a TributaryError explaining why this runner cannot run scripts here."""


def prepare_work_dir(job: ScriptJob) -> None:
    """Lay out the work dir contract (see the module docstring)."""
    work = job.work_dir
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o700)
    (work / "script.py").write_text(job.script, encoding="utf-8")
    if (work / "lib").exists():
        shutil.rmtree(work / "lib")
    shutil.copytree(LIB_SOURCE, work / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(BOOT_SOURCE, work / "_tributary_boot.py")
    (work / "out" / "spool").mkdir(parents=True, exist_ok=True)
    job_input = {
        "metadata": job.metadata,
        "connection": job.connection,
        "trigger": job.trigger_payload,
        "record_limit": job.record_limit,
        "secrets": job.secrets,
        "checkpoints": job.checkpoints,
    }
    input_path = work / "input.json"
    input_path.write_text(json.dumps(job_input), encoding="utf-8")
    input_path.chmod(0o600)


def read_outcome(job: ScriptJob, exit_code: Optional[int], duration_s: float) -> ScriptOutcome:
    """Turn what the sandbox left in out/ into an outcome. A missing result file means the
    process died before the harness could report (killed, out of memory...)."""
    out = job.work_dir / "out"
    outcome = ScriptOutcome(status="failed", exit_code=exit_code, duration_s=duration_s, spool_dir=out / "spool")
    result_path = out / "result.json"
    if result_path.exists():
        result = _read_json(result_path) or {"error": "the script's result file is unreadable (was it overwritten?)"}
        outcome.status = result.get("status", "failed")
        outcome.records = int(result.get("records", 0))
        outcome.error = result.get("error")
        outcome.error_line = result.get("error_line")
    else:
        outcome.error = f"the script's process ended without reporting (exit code {exit_code})"
    if outcome.error:
        outcome.error = mask(outcome.error, job.secrets)
    metadata_path = out / "metadata.json"
    if metadata_path.exists():
        outcome.metadata = _read_json(metadata_path)
        if not isinstance(outcome.metadata, dict):
            outcome.status, outcome.metadata = "failed", None
            outcome.error = "the saved metadata is unreadable: it must be a JSON object written by metadata.save()"
    return outcome


def _read_json(path: Path):
    """The sandbox's files are the script's to scribble on: unreadable means None, not a crash."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None
