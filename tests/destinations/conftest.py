"""The destination under test, over each destination (its servers: tests/servers.py, and a
fresh PostgreSQL database per test on 127.0.0.1:5432, tests/conftest.py's postgres_url)."""

from __future__ import annotations

import pytest

from tests.destinations.harness import TARGETS, Spool, make_target


@pytest.fixture(params=TARGETS)
def target(request, tmp_path):
    """One destination under test, with readers that look at what it really stored."""
    return make_target(request.param, request, tmp_path)


@pytest.fixture
def spool_files(tmp_path):
    """Write spool files: spool_files([records of file 1], [records of file 2]...)."""
    folder = tmp_path / "spool"
    folder.mkdir()
    return Spool(folder)
