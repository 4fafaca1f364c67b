"""A server whose store file is not a database says so in one line and stops: no traceback."""

from __future__ import annotations

import pytest

from tests.ui.server import start_server


def test_a_corrupt_store_stops_the_server_with_one_line_naming_the_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    store = data / "tributary.db"
    store.write_bytes(b"this is not a database, it was overwritten\n" * 100)

    with pytest.raises(RuntimeError, match="stopped at start-up") as stopped:
        start_server(data)

    log = str(stopped.value)
    assert f"error: the store {store} cannot be read" in log
    assert "restore it from a backup" in log
    assert "Traceback" not in log
    assert store.read_bytes().startswith(b"this is not a database")  # nothing overwrote the user's file
