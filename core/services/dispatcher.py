"""The run queue's dispatcher: offers the due queued runs, oldest first, to the executor
while it has free slots (at most `max_concurrent_runs` at a time with the local executor).

Runs wait in the store with status `queued` (the Runs page shows them, and why). A run's
RunQueued event and an ended run wake the dispatcher at once; otherwise it looks every second
(for retries whose backoff has passed).

A connection may cap its runs at once (limits `max_concurrent_runs`, core/run_caps.py), so
that an API's rate limit is not multiplied by the number of workers: the app is the one
process that dispatches, and it counts the connection's runs in the store (any worker's)
plus those it handed to the executor and no worker has claimed yet. A run of a connection at
its cap stays queued, and the runs queued behind it are offered in their turn.
"""

from __future__ import annotations

from collections import Counter

from core.executors import Executor
from core.run_caps import Cap, capped_waits, connection_caps, due_runs, runs_at_once_by_connection
from core.services.loop import LoopService
from storage.models import Run, utcnow

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

    def handed(self) -> set[str]:
        """The runs given to the executor that no worker has claimed yet, or that this process
        executes (an executor sending runs elsewhere tells the first with `waiting()`)."""
        waiting = getattr(self.executor, "waiting", None)
        return self.executor.in_flight() | (waiting() if waiting else set())

    def run_once(self) -> list[str]:
        """Start as many due queued runs as there are free slots, skipping those whose
        connection is at its cap; their ids."""
        started: list[str] = []
        handed = self.handed()
        caps = connection_caps()
        busy = runs_at_once_by_connection(handed) if caps else Counter()
        full = {conn_id for conn_id, cap in caps.items() if busy[conn_id] >= cap.runs}
        offered = set(handed)
        while self.executor.free_slots() > 0:
            batch = due_runs(utcnow(), skip_connections=full, skip_runs=offered)
            if not batch:
                break
            for run, conn_id in batch:
                offered.add(run.id)
                if conn_id in full:  # it reached its cap earlier in this batch
                    continue
                if self.executor.free_slots() <= 0:
                    return started  # no slot for any run
                # Refused: no room for this run (with the celery executor, in its feed's
                # queue); the next run may have some.
                if not self.executor.submit(run.id):
                    continue
                started.append(run.id)
                if conn_id in caps:
                    busy[conn_id] += 1
                    if busy[conn_id] >= caps[conn_id].runs:
                        full.add(conn_id)
        return started

    dispatch_due = run_once

    def capped_waits(self, runs: list[Run]) -> dict[str, tuple[Cap, int]]:
        """{run id: (the connection's cap, its runs at once)} for the queued runs among `runs`
        that wait for their connection's cap."""
        return capped_waits(runs, self.handed())
