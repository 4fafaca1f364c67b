"""The `lib` package imported in the test process, as a script imports it: from a copy in a
directory of its own put on sys.path (the sandbox's work dir holds it the same way)."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest

from demo.api import DemoAPI

LIB_SOURCE = Path(__file__).resolve().parents[2] / "runners" / "lib"


@pytest.fixture(scope="session")
def lib(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    shutil.copytree(LIB_SOURCE, work / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module("lib")
    finally:
        sys.path.remove(str(work))
        for name in [n for n in sys.modules if n == "lib" or n.startswith("lib.")]:
            del sys.modules[name]


class FakeTiming:
    """A clock that only moves when the code under test sleeps; shared with the demo server
    (its rate windows), so that a 429's Retry-After is waited for without waiting."""

    def __init__(self, start: float = 1_800_000_040.0):
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds

    def random(self) -> float:
        return 0.5


@pytest.fixture
def timing():
    return FakeTiming()


@pytest.fixture
def session(lib, timing):
    """A connection as lib builds it (no auth), on the fake clock."""
    from lib._connection import ResilientSession

    with ResilientSession(timing=timing) as connection:
        yield connection


@pytest.fixture
def api(timing):
    """A demo API of this test's own (its counters start at zero), on the fake clock."""
    with DemoAPI(clock=timing.time) as server:
        yield server


@pytest.fixture
def log_lines(lib, monkeypatch):
    """The lines lib writes to the run's log."""
    from lib import _budget, _connection, _fetch

    lines: list[str] = []
    for module in (_budget, _connection, _fetch):
        monkeypatch.setattr(module, "log", lines.append)
    return lines
