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
    out/requests.jsonl  the requests the script made, one JSON object a line, and a last
                        {"summary": {...}} line with the counts (see runners/lib/_inspect.py)
    out/checkpoints/    NNNN.json from metadata.checkpoint(), answered by the host's NNNN.ack
                        (see runners/checkpoints.py)
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from common.secrets import mask

LIB_SOURCE = Path(__file__).resolve().parent / "lib"
BOOT_SOURCE = Path(__file__).resolve().parent / "boot.py"

LogSink = Callable[[str], None]

# Output with no newline is cut into lines of this size, so that the app never holds more of a
# line than this (every runner: a script printing 200 MB without a newline costs 64 KiB here).
MAX_LINE_BYTES = 64 * 1024
# The largest result.json / metadata.json the app reads back from a work dir.
MAX_OUTCOME_FILE_BYTES = 16 * 1024 * 1024
# out/requests.jsonl: the sandbox writes at most 1 MiB and 500 requests; more is not read.
MAX_REQUESTS_FILE_BYTES = 1024 * 1024 + 64 * 1024
MAX_REQUESTS = 500
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeWorkFile(Exception):
    """A file of the work dir the app will not read: a symlink, not a regular file, too big."""


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
    requests: list[dict] = field(default_factory=list)  # the requests the script made (out/requests.jsonl)
    request_counts: dict = field(default_factory=dict)  # requests, retries, waits, waited_s, bytes...

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def requests_line(self) -> str | None:
        """The run's request counts in a line of its log; None when it made no request."""
        c = self.request_counts
        if not c.get("requests"):
            return None
        return (f"requests: {c['requests']} ({c.get('retries', 0)} retries, {c.get('waits', 0)} waits for "
                f"{c.get('waited_s', 0):.1f} s, {c.get('bytes', 0)} bytes received, {c.get('errors', 0)} errors)")

    def spool_files(self) -> list[Path]:
        """The complete spool parts the script left: regular files of the spool dir itself
        only (no symlinks, no hard links to files elsewhere, no symlinked spool dir)."""
        if not self.spool_dir:
            return []
        try:
            fd = open_dir(self.spool_dir)
        except (FileNotFoundError, UnsafeWorkFile):
            return []
        try:
            names = [name for name in os.listdir(fd)
                     if name.startswith("part-") and name.endswith(".jsonl") and is_own_regular_file(fd, name)]
        finally:
            os.close(fd)
        return [self.spool_dir / name for name in sorted(names)]


class RunHandle(ABC):
    """A started script: wait for it, or cancel it from another thread."""

    @abstractmethod
    def wait(self) -> ScriptOutcome: ...

    @abstractmethod
    def cancel(self) -> None: ...

    def sandbox_ref(self) -> str | None:
        """What a later process needs to kill this script's sandbox if this process dies
        (`pgid:N`, `container:ID`), recorded on the run; None where nothing can outlive it."""
        return None


class Runner(ABC):
    name: str = ""

    @abstractmethod
    def start(self, job: ScriptJob, on_log: LogSink) -> RunHandle:
        """Start the script; on_log receives each line of output, secrets already masked."""

    def check(self) -> None:
        """Raise a TributaryError explaining why this runner cannot run scripts here."""


WATCH_INTERVAL_S = 0.5  # how often a running script's work dir is measured


def work_dir_size(path: Path) -> int:
    """Bytes the work dir holds (sparse files at their full size), without following links."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                found = list(entries)
        except OSError:
            continue
        for entry in found:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += max(info.st_size, info.st_blocks * 512)
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)
    return total


class WorkDirWatch:
    """Measures a running script's work dir every WATCH_INTERVAL_S (spool parts already taken
    out do not count) and calls kill() once it holds more than limit_mb (every runner)."""

    def __init__(self, work_dir: Path, limit_mb: int, kill: Callable[[], object]):
        self.limit_mb = limit_mb
        self.exceeded = False
        self._work_dir, self._kill = work_dir, kill
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"watch-{work_dir.name}", daemon=True)
        self._thread.start()

    @property
    def error(self) -> str:
        return f"the run wrote more than {self.limit_mb} MB to its work dir (TRIBUTARY_WORK_DIR_LIMIT_MB)"

    def _watch(self) -> None:
        limit = self.limit_mb * 1024 * 1024
        while not self._stopped.wait(WATCH_INTERVAL_S):
            if work_dir_size(self._work_dir) > limit:
                self.exceeded = True
                self._kill()
                return

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


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


def open_dir(path: Path, dir_fd: int | None = None) -> int:
    """A directory's fd, refusing a symlink in its place (UnsafeWorkFile)."""
    try:
        return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UnsafeWorkFile(f"{path} is not a directory of the work dir (a symbolic link?)") from exc


def is_own_regular_file(dir_fd: int, name: str) -> bool:
    """A regular file, not a symlink, with no second name (a hard link to a file outside)."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1


def read_work_file(dir_fd: int, name: str, max_bytes: int = MAX_OUTCOME_FILE_BYTES) -> bytes | None:
    """A file's bytes, read without following a symlink, or None when it does not exist.
    UnsafeWorkFile when it is a symlink, not a regular file or larger than max_bytes."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsafeWorkFile(f"out/{name} is not a regular file (a symbolic link?)") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeWorkFile(f"out/{name} is not a regular file")
        if info.st_size > max_bytes:
            raise UnsafeWorkFile(f"out/{name} is larger than {max_bytes // (1024 * 1024)} MiB")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsafeWorkFile(f"out/{name} is larger than {max_bytes // (1024 * 1024)} MiB")
        return data
    finally:
        os.close(fd)


def read_outcome(job: ScriptJob, exit_code: Optional[int], duration_s: float) -> ScriptOutcome:
    """Turn what the sandbox left in out/ into an outcome. A missing result file means the
    process died before the harness could report (killed, out of memory...). The files are
    the script's to scribble on: only regular files of out/ itself are read (no symlinks),
    each at most MAX_OUTCOME_FILE_BYTES, and garbage fails the run with a message."""
    outcome = ScriptOutcome(status="failed", exit_code=exit_code, duration_s=duration_s,
                            spool_dir=job.work_dir / "out" / "spool")
    try:
        _read_outcome_files(job, outcome)
    except (UnsafeWorkFile, ValueError, TypeError, OSError) as exc:
        outcome.status, outcome.metadata = "failed", None
        outcome.error = f"the script's result in out/ could not be read: {exc}"
    if outcome.error:
        outcome.error = mask(str(outcome.error), job.secrets)
    return outcome


def _read_outcome_files(job: ScriptJob, outcome: ScriptOutcome) -> None:
    try:
        work_fd = open_dir(job.work_dir)
    except FileNotFoundError:
        work_fd = None
    if work_fd is None:
        outcome.error = "the run's work dir is gone"
        return
    try:
        try:
            out_fd = open_dir(Path("out"), dir_fd=work_fd)
        except FileNotFoundError:
            out_fd = None
    finally:
        os.close(work_fd)
    if out_fd is None:
        outcome.error = f"the script's process ended without reporting (exit code {outcome.exit_code})"
        return
    try:
        _read_requests(out_fd, outcome, job.secrets)
        result_raw = read_work_file(out_fd, "result.json")
        metadata_raw = read_work_file(out_fd, "metadata.json")
    finally:
        os.close(out_fd)
    if result_raw is not None:
        result = _parse_json(result_raw)
        if not isinstance(result, dict):
            result = {"error": "the script's result file is unreadable (was it overwritten?)"}
        # Only the harness's two verdicts count: a script writing "cancelled" here stays failed.
        outcome.status = "succeeded" if result.get("status") == "succeeded" else "failed"
        outcome.records = int(result.get("records", 0))
        error = result.get("error")
        outcome.error = None if error is None else str(error)
        line = result.get("error_line")
        outcome.error_line = line if isinstance(line, int) else None
    else:
        outcome.error = f"the script's process ended without reporting (exit code {outcome.exit_code})"
    if metadata_raw is not None:
        outcome.metadata = _parse_json(metadata_raw)
        if not isinstance(outcome.metadata, dict):
            outcome.status, outcome.metadata = "failed", None
            outcome.error = "the saved metadata is unreadable: it must be a JSON object written by metadata.save()"


_REQUEST_TEXT = {"method": 16, "url": 2048, "body": 4096 + 16, "content_type": 100, "kind": 16, "error": 500}
_REQUEST_NUMBERS = ("n", "status", "duration_ms", "bytes", "attempts", "retries")
COUNT_KEYS = ("requests", "attempts", "retries", "waits", "waited_s", "bytes", "errors", "token_calls", "recorded",
              "dropped")


def _read_requests(out_fd: int, outcome: ScriptOutcome, secrets: list[str]) -> None:
    """The requests the script made. The inspector only informs: a file that cannot be read
    (a symlink, too big, garbage) leaves the list empty and never fails the run."""
    try:
        raw = read_work_file(out_fd, "requests.jsonl", MAX_REQUESTS_FILE_BYTES)
    except (UnsafeWorkFile, OSError):
        return
    if not raw:
        return
    try:
        _parse_requests(raw, outcome, secrets)
    except Exception:  # noqa: BLE001 - see the docstring
        outcome.requests, outcome.request_counts = [], {}


def _parse_requests(raw: bytes, outcome: ScriptOutcome, secrets: list[str]) -> None:
    summary = None
    for line in raw.decode("utf-8", errors="replace").splitlines():
        item = _parse_json(line.encode("utf-8"))
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("summary"), dict):
            summary = item["summary"]
        elif len(outcome.requests) < MAX_REQUESTS:
            outcome.requests.append(_clean_request(item, secrets))
    counts = _counts_of(outcome.requests)
    if summary is not None:
        counts.update({k: summary[k] for k in COUNT_KEYS if _is_number(summary.get(k))})
    outcome.request_counts = counts


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _clean_request(item: dict, secrets: list[str]) -> dict:
    """Only the fields the inspector writes, of their types and sizes, secrets masked again
    (the file is the script's to scribble on)."""
    clean: dict = {}
    for name, limit in _REQUEST_TEXT.items():
        value = item.get(name)
        clean[name] = mask(str(value)[:limit], secrets) if value is not None else None
    for name in _REQUEST_NUMBERS:
        value = item.get(name)
        clean[name] = value if _is_number(value) else None
    clean["body_truncated"] = item.get("body_truncated") is True
    waits = item.get("waits") if isinstance(item.get("waits"), list) else []
    clean["waits"] = [[w[0], mask(str(w[1])[:200], secrets)] for w in waits[:100]
                      if isinstance(w, list) and len(w) == 2 and _is_number(w[0])]
    names = item.get("request_headers") if isinstance(item.get("request_headers"), list) else []
    clean["request_headers"] = [str(n)[:100] for n in names[:50]]
    if clean["kind"] not in ("request", "token"):
        clean["kind"] = "request"
    return clean


def _counts_of(requests: list[dict]) -> dict:
    waits = [w for r in requests for w in r["waits"]]
    return {"requests": len(requests), "attempts": sum(r["attempts"] or 1 for r in requests),
            "retries": sum(r["retries"] or 0 for r in requests), "waits": len(waits),
            "waited_s": round(sum(w[0] for w in waits), 3), "bytes": sum(r["bytes"] or 0 for r in requests),
            "errors": sum(1 for r in requests if r["error"] or (r["status"] or 0) >= 400),
            "token_calls": sum(1 for r in requests if r["kind"] == "token"), "recorded": len(requests), "dropped": 0}


def _parse_json(raw: bytes):
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
