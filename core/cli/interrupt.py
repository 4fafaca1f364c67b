"""Ctrl-C (SIGINT) and SIGTERM while `run` waits for its run: the run ends as cancelled.

The signal handler only notes the signal and wakes a thread; that thread asks the services to
cancel this command's run (core.runs.cancel_run, whose CancelRequested makes the run executor
kill the sandbox), so the store is never written from inside a signal handler. A retry waiting
for its backoff is cancelled the same way and its wait cut short. The command then prints the
run as it ended and exits 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""

from __future__ import annotations

import os
import signal
import threading
from datetime import timedelta

from common.clock import aware, utcnow
from common.errors import Conflict, NotFound
from common.process import worker_id
from core import runs as runs_service

SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL_S = 0.1


class CancelOnSignal:
    """While active, SIGINT and SIGTERM cancel the runs of `feed_name` this process started."""

    def __init__(self, feed_name: str):
        self.feed_name = feed_name
        self.signum: int | None = None
        self._since = utcnow() - timedelta(seconds=1)  # a store may keep whole seconds only
        self._me = worker_id()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._previous: dict[int, object] = {}
        self._thread: threading.Thread | None = None

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum

    def __enter__(self) -> "CancelOnSignal":
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN:
                    continue  # started with it ignored (a shell's background job): keep it so
                self._previous[signum] = previous
                signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sleep(self, seconds: float) -> None:
        """A retry's backoff, cut short by a signal, which cancels the retry before the wait
        returns (else it would start)."""
        if self._wake.wait(seconds):
            self._cancel_own()

    def _on_signal(self, signum, _frame) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        self._wake.set()
        # os.write: print() could re-enter a buffered write the signal interrupted.
        message = "cancelling the run..." if first else "still cancelling the run (its sandbox is being stopped)"
        try:
            os.write(2, f"\n{signal.Signals(signum).name}: {message}\n".encode())
        except OSError:
            pass  # no stderr: the cancel matters, not the note
        if first:
            self._thread = threading.Thread(target=self._cancel_loop, name="cli-cancel", daemon=True)
            self._thread.start()

    def _cancel_loop(self) -> None:
        """Cancel each run of ours that is active, until the command ends (a run may not be
        created yet, a failed one may be followed by its retry)."""
        while not self._done.is_set():
            self._cancel_own()
            self._done.wait(POLL_S)

    def _cancel_own(self) -> None:
        with self._lock:
            try:
                runs = [run for run in self._own_active_runs() if run.id not in self._cancelled]
            except Exception:  # noqa: BLE001 - a store hiccup: the loop tries again
                return
            for run in runs:
                try:
                    runs_service.cancel_run(run.id)
                except (Conflict, NotFound):
                    pass  # it ended meanwhile
                except Exception:  # noqa: BLE001 - a store hiccup: the loop tries again
                    continue
                self._cancelled.add(run.id)

    def _own_active_runs(self):
        return [
            run for run in runs_service.list_runs(self.feed_name, limit=5)
            if run.status in runs_service.ACTIVE_STATUSES and run.trigger == "cli"
            and aware(run.created_at) >= self._since and run.worker in (None, self._me)
        ]
