"""The runner contract suite runs once per runner. A runner whose engine is missing skips on
a user's machine (with a message naming it) and fails in CI."""

from __future__ import annotations

import os

import pytest

from core.errors import TributaryError
from runners import get_runner
from tests.conftest import missing_service

RUNNER_NAMES = [name for name in os.environ.get("TRIBUTARY_TEST_RUNNERS", "subprocess").split(",") if name]


@pytest.fixture(params=RUNNER_NAMES)
def runner_name(request, tributary, monkeypatch):
    """An isolated Tributary whose runs use the given runner; yields the runner's name."""
    monkeypatch.setenv("TRIBUTARY_RUNNER", request.param)
    try:
        get_runner(request.param).check()
    except (TributaryError, ImportError) as exc:
        missing_service(f"the {request.param} runner cannot run here: {exc}")
    return request.param
