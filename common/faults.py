"""The crash tests' fault hook: a debug setting that kills the process at a named step of a run.

    TRIBUTARY_FAULT_POINT=<point>[:<n>]

makes the process SIGKILL itself the n-th time (the first, without n) it passes
fault_point(<point>): no clean-up, no finally blocks, no flushing, exactly as if the machine had
lost power or the OOM killer had struck. It exists for the crash-point matrix
(tests/exactly_once), which runs a run in a child process with the setting and then checks
that recovery and one more run leave every record loaded exactly once. Never set it in a
deployment. Unset (always, outside those tests) it costs one environment lookup.

The points of a run (core/execution.py):
- script_running: the script is running in its sandbox;
- part_staged: a spool part has been taken out of the sandbox and staged (":2" - the second);
- destination_before_commit: inside a destination's load, its rows and ledger row written and
  not yet committed (called by the crash tests' harness around the destination);
- destination_committed: a destination committed its rows and ledger row (":1" of two - the
  first one only), before the store records the run;
- store_committed: the store recorded the run succeeded and its state, before the clean-up;
- checkpoint_committed: the store recorded a checkpoint (metadata.checkpoint) and its state,
  before the script is told to go on (":4" - the fourth). A checkpoint's loads pass
  destination_before_commit and destination_committed too, counted with the run's other loads.
"""

from __future__ import annotations

import os
import signal
import threading

FAULT_POINT_ENV = "TRIBUTARY_FAULT_POINT"

_passed: dict[str, int] = {}
_lock = threading.Lock()


def fault_point(name: str) -> None:
    """Die here, at once, if the debug setting names this point (see the module docstring)."""
    wanted = os.environ.get(FAULT_POINT_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    with _lock:
        _passed[name] = _passed.get(name, 0) + 1
        count = _passed[name]
    if count == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
