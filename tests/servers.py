"""The real servers that tests of more than one folder use, one definition for the whole run
(registered by tests/conftest.py): an S3 server (moto, in a thread, on a free port) and a
Snowflake server (fakesnow's app under uvicorn). One definition matters: fakesnow.server()
can be called once per process (it replaces itself with its module on first use)."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest

from tests.conftest import missing_service


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        missing_service(f"the S3 test server (moto[server]) is not installed: {exc}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(s3_endpoint):
    """S3 settings pointing at a new, empty bucket on the test server."""
    from storage.destinations.settings import S3Settings
    from storage.destinations.s3.objects import s3_client

    settings = S3Settings(bucket=f"tributary-{uuid.uuid4().hex[:12]}", prefix="lake", region="us-east-1",
                          endpoint_url=s3_endpoint, access_key_id="test-key", secret_access_key="test-secret")
    s3_client(settings).create_bucket(Bucket=settings.bucket)
    return settings


@pytest.fixture(scope="session")
def snowflake_server():
    """fakesnow's app served by uvicorn on a free port, as fakesnow.server() does, but stopped
    with force_exit at the end: its own clean exit waits for every client connection to close,
    and a connector left open by a test would hold the whole run at its end."""
    try:
        import uvicorn

        import fakesnow.server as fake
    except ImportError as exc:
        missing_service(f"the Snowflake test server (fakesnow) is not installed: {exc}")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="fakesnow server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while thread.is_alive() and not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        missing_service("the Snowflake test server (fakesnow) did not start")
    try:
        yield {"user": "fake", "password": "snow", "account": "fakesnow", "host": "127.0.0.1", "port": port,
               "protocol": "http", "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
               "network_timeout": 1}
    finally:
        server.should_exit = server.force_exit = True
        thread.join(10)


@pytest.fixture
def snowflake_settings(snowflake_server):
    """Snowflake settings for a new database and schema on the test server."""
    import snowflake.connector

    from storage.destinations.settings import SnowflakeSettings

    database, schema = f"DB_{uuid.uuid4().hex[:10].upper()}", "LOADS"
    with snowflake.connector.connect(**snowflake_server) as connection:
        connection.cursor().execute(f"CREATE DATABASE {database}")
        connection.cursor().execute(f"CREATE SCHEMA {database}.{schema}")
    return SnowflakeSettings(
        account=snowflake_server["account"], user=snowflake_server["user"], password=snowflake_server["password"],
        database=database, schema=schema, host=snowflake_server["host"], port=snowflake_server["port"],
        protocol=snowflake_server["protocol"],
    )
