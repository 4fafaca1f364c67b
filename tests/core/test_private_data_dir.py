"""The data dir holds the key, the store, the warehouse and every run's log: the app's start
makes it its user's only, including what an earlier start left readable by others."""

import os
import stat

from core import bootstrap, housekeeping
from core.feeds import FeedSpec, create_feed
from core.connections import ConnectionInput, create_connection

SCRIPT = "from lib import outputStream\nprint('hello')\nfor i in range(3):\n    outputStream.write({'i': i})\n"


def modes(root):
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode):
                found[os.path.relpath(path, root)] = (stat.S_ISDIR(mode), stat.S_IMODE(mode))
    return found


def test_after_a_run_through_the_app_services_everything_in_the_data_dir_is_private(tributary, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_DEMO_API", "0")
    os.umask(0o022)
    (tributary / "old").mkdir(parents=True)
    (tributary / "old" / "notes.txt").write_text("left by an earlier version")
    (tributary / "old" / "tool").write_text("#!/bin/sh\n")
    os.chmod(tributary / "old" / "tool", 0o755)
    os.chmod(tributary, 0o755)
    try:
        housekeeping.start_services()
        create_connection("api", "basic", ConnectionInput(username="ann", password="hunter22"))  # the key file
        create_feed(FeedSpec(name="private", script=SCRIPT))
        run = bootstrap.current().start_run("private", wait=True)
        assert run.status == "succeeded", run.error
    finally:
        housekeeping.stop_services()
    assert stat.S_IMODE(os.stat(tributary).st_mode) == 0o700
    found = modes(tributary)
    assert any(p.startswith("logs/") for p in found) and "secret.key" in found and "tributary.db" in found
    assert "warehouse.duckdb" in found, sorted(found)
    assert "old/tool" in found and found.pop("old/tool") == (False, 0o700)  # executable, for its owner only
    wrong = {path: oct(mode) for path, (is_dir, mode) in found.items() if mode != (0o700 if is_dir else 0o600)}
    assert not wrong, wrong


def test_make_private_leaves_symbolic_links_and_tightens_only_when_asked(tmp_path):
    from common.settings import make_private

    data = tmp_path / "data"
    data.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to change")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)
    (data / "loose.txt").write_text("x")
    (data / "loose.txt").chmod(0o644)
    make_private(data)
    assert stat.S_IMODE(os.stat(data / "loose.txt").st_mode) == 0o644  # the CLI's quick path
    make_private(data, tighten_existing=True)
    assert stat.S_IMODE(os.stat(data / "loose.txt").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o644
