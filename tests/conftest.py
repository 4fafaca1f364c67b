"""Shared fixtures: an isolated Tributary (data dir + store) per test, on SQLite and on the
PostgreSQL server at 127.0.0.1:5432, and the bundled demo API served over real HTTP.

A service that is missing makes its tests skip on a user's machine with a message naming it;
under CI (CI=true) the same tests fail instead, since CI starts every service.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo.api import DemoAPI  # noqa: E402

pytest_plugins = ["tests.servers"]  # S3 and Snowflake servers, shared by every folder
from storage.db import dispose_all  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get("TRIBUTARY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def missing_service(message: str) -> None:
    """Skip on a user's machine; fail in CI, where every service must be running."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must start it)")
    pytest.skip(message)


def _postgres_admin():
    import psycopg

    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = _postgres_admin()
    name = f"tributary_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        dispose_all()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _isolate(monkeypatch, tmp_path: Path, database_url: str | None) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("TRIBUTARY_DATA_DIR", str(data))
    monkeypatch.delenv("TRIBUTARY_SECRET_KEY", raising=False)
    monkeypatch.delenv("TRIBUTARY_DUCKDB_PATH", raising=False)
    monkeypatch.delenv("TRIBUTARY_PARQUET_DIR", raising=False)
    monkeypatch.setenv("TRIBUTARY_RUNNER", os.environ.get("TRIBUTARY_TEST_RUNNER", "subprocess"))
    if database_url:
        monkeypatch.setenv("TRIBUTARY_DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("TRIBUTARY_DATABASE_URL", raising=False)
    return data


@pytest.fixture(autouse=True)
def fresh_process_state():
    """Each test starts as a new process would: no services left by an earlier test (a stopped
    dispatcher, a capturing executor) and the umask the test run began with (the services set
    077 when they start)."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    from core import bootstrap

    bootstrap.reset()
    os.umask(umask)


@pytest.fixture
def tributary(monkeypatch, tmp_path):
    """An isolated Tributary on the embedded SQLite store; yields its data dir."""
    data = _isolate(monkeypatch, tmp_path, None)
    yield data
    dispose_all()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, monkeypatch, tmp_path):
    """The same test on the SQLite store and on PostgreSQL; yields the data dir."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    data = _isolate(monkeypatch, tmp_path, url)
    yield data
    dispose_all()


@pytest.fixture(scope="session")
def demo_api():
    with DemoAPI() as api:
        yield api


DOCKER_FIXTURES = {"docker_session_image", "docker_runner"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses the Docker engine `docker`, so that `make test` can run the
    others on several processes and these in one (they share the engine's images): the tests of
    the docker runner's own modules, those using its fixtures, and the docker case of a test
    parametrised over the runners."""
    marker = pytest.mark.docker
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (item.path.name.startswith("test_docker_") or DOCKER_FIXTURES & set(item.fixturenames)
                or any(value == "docker" for value in params.values() if isinstance(value, str))):
            item.add_marker(marker)
