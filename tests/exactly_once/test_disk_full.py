"""A disk that fills during the load: the run's error says so, with the path, and the table and
the state are as they were. The warehouse file lives on a small tmpfs the test mounts (root
only; elsewhere the test skips saying why, and fails in CI)."""

from __future__ import annotations

import os
import subprocess
import duckdb
import pytest

from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed, edit_feed
from core.runs import create_run
from core.state import current_state
from tests.conftest import missing_service

SMALL = ("from lib import outputStream, metadata\n"
         "for i in range(10):\n    outputStream.write({'id': i})\n"
         "metadata.save({'done': 10})\n")
LARGE = ("from lib import outputStream, metadata\n"
         "for i in range(400000):\n    outputStream.write({'id': 1000 + i, 'text': 'x' * 64 + str(i)})\n"
         "metadata.save({'done': 400010})\n")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        missing_service("mounting a tmpfs for the disk-full test needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        missing_service(f"this machine does not allow a tmpfs mount: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_full_during_the_load_says_so_and_changes_nothing(tributary, small_disk, monkeypatch):
    warehouse = small_disk / "warehouse.duckdb"
    monkeypatch.setenv("TRIBUTARY_DUCKDB_PATH", str(warehouse))
    create_feed(FeedSpec(name="orders", script=SMALL))
    assert execute_run(create_run("orders").id).status == "succeeded"

    edit_feed("orders", script=LARGE)
    failed = execute_run(create_run("orders").id)

    assert failed.status == "failed"
    error = failed.error.lower()
    assert "the disk is full" in error and "no space left on device" in error, failed.error
    assert str(small_disk) in failed.error, failed.error  # it names where
    assert "cannot rollback" not in error and "no transaction is active" not in error
    assert current_state("orders") == {"done": 10}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*), min(id), max(id) FROM orders").fetchall() == [(10, 0, 9)]
