"""Script tests that run in the background while the UI keeps answering.

A ScriptTestSession runs one test (core.runs.test_script or test_feed) in a thread and collects its
log lines as they arrive, so a page can show them live and then the result. Sessions are kept
per owner key (e.g. a draft) in this process, so a browser reload finds a test still running.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Callable

from common.errors import TributaryError
from core.preview import PreviewRequest, PreviewResult, preview_feed, preview_script
from common.settings import get_settings

MAX_LOG_LINES = 5000  # the tail a page can show; a chatty script must not fill the memory

TestJob = Callable[[Callable[[str], None]], PreviewResult]


class ScriptTestSession:

    def __init__(self, job: TestJob, fingerprint: str = "", cancel: threading.Event | None = None,
                 record_limit: int | None = None):
        self._job = job
        self.id = uuid.uuid4().hex[:12]
        self.fingerprint = fingerprint
        self._cancel = cancel or threading.Event()  # the job stops its script once this is set
        self.record_limit = record_limit  # where the script is stopped, None when run to completion
        self._lines: deque[str] = deque(maxlen=MAX_LOG_LINES)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.result: PreviewResult | None = None
        self.failure: str | None = None  # a problem that stopped the test before the script ran
        self.started_at: float | None = None
        self.finished_at: float | None = None

    def start(self) -> "ScriptTestSession":
        self.started_at = time.monotonic()
        threading.Thread(target=self._run, name="tributary-test", daemon=True).start()
        return self

    def _append(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def _run(self) -> None:
        try:
            self.result = self._job(self._append)
        except TributaryError as exc:
            self.failure = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a silent thread death
            self.failure = f"the test could not run: {type(exc).__name__}: {exc}"
        finally:
            self.finished_at = time.monotonic()
            self._done.set()

    @property
    def running(self) -> bool:
        return self.started_at is not None and not self._done.is_set()

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def elapsed_s(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.monotonic()) - self.started_at

    def stop(self) -> None:
        """Ask the running script to stop; the session ends with a cancelled result."""
        self._cancel.set()

    @property
    def stopping(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._done.wait(timeout_s)


_sessions: dict[tuple[str, str], ScriptTestSession] = {}
_sessions_lock = threading.Lock()


def _registry_key(owner_key: str) -> tuple[str, str]:
    # The data dir is part of the key: two Tributary set-ups in one process never mix.
    return str(get_settings().data_dir), owner_key


def start_test(owner_key: str, job: TestJob, fingerprint: str = "", cancel: threading.Event | None = None,
               record_limit: int | None = None) -> ScriptTestSession:
    session = ScriptTestSession(job, fingerprint, cancel, record_limit)
    with _sessions_lock:
        _sessions[_registry_key(owner_key)] = session
    return session.start()


def _start_preview(owner_key: str, run_to_completion: bool, fingerprint: str,
                   preview: Callable[[Callable[[str], None], threading.Event], PreviewResult]) -> ScriptTestSession:
    cancel = threading.Event()  # set by ScriptTestSession.stop(); the preview then stops its script
    limit = None if run_to_completion else get_settings().preview_records
    return start_test(owner_key, lambda on_log: preview(on_log, cancel), fingerprint, cancel, limit)


def start_script_test(owner_key: str, request: PreviewRequest, fingerprint: str = "") -> ScriptTestSession:
    return _start_preview(owner_key, request.run_to_completion, fingerprint,
                          lambda on_log, cancel: preview_script(request, on_log, cancel=cancel))


def start_feed_test(owner_key: str, feed_name: str, run_to_completion: bool = True) -> ScriptTestSession:
    return _start_preview(owner_key, run_to_completion, "",
                          lambda on_log, cancel: preview_feed(feed_name, run_to_completion, on_log, cancel))


def current_test(owner_key: str) -> ScriptTestSession | None:
    with _sessions_lock:
        return _sessions.get(_registry_key(owner_key))


def forget_test(owner_key: str) -> None:
    with _sessions_lock:
        _sessions.pop(_registry_key(owner_key), None)
