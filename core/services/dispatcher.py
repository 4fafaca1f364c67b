"""The run queue's dispatcher: offers the due queued runs, oldest first, to the executor
while it has free slots (at most `max_concurrent_runs` at a time with the local executor).

Runs wait in the store with status `queued` (the Runs page shows them, and why). A run's
RunQueued event and an ended run wake the dispatcher at once; otherwise it looks every second
(for retries whose backoff has passed).
"""

from __future__ import annotations

from core.executors import Executor
from core.runs import due_queued_runs
from core.services.loop import LoopService
from storage.models import utcnow

POLL_S = 1.0


class Dispatcher(LoopService):
    name = "dispatcher"

    def __init__(self, executor: Executor, poll_s: float = POLL_S):
        super().__init__(poll_s)
        self.executor = executor

    @property
    def running(self) -> int:
        return len(self.executor.in_flight())

    @property
    def max_concurrent(self) -> int:
        return getattr(self.executor, "max_concurrent", 0)

    def run_once(self) -> list[str]:
        """Start as many due queued runs as there are free slots; their ids."""
        started = []
        taken = self.executor.in_flight()
        for run in due_queued_runs(utcnow()):
            if run.id in taken:
                continue
            if self.executor.free_slots() <= 0:
                break
            # Refused: no room for this run (with the celery executor, in its feed's queue);
            # the next run may have some.
            if self.executor.submit(run.id):
                started.append(run.id)
        return started

    dispatch_due = run_once
