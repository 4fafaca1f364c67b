"""Red team: a feed's script trying to get out of its sandbox, over the `subprocess` runner
(bubblewrap) and the docker runner. Each attempt fails; the run fails or succeeds as each test
says; and the app (this test process) is alive afterwards and still runs feeds."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import missing_service

from common.settings import get_settings
from core.bootstrap import execute_run
from core.connections import ConnectionInput, create_connection
from core.feeds import FeedSpec, create_feed, get_feed
from core.preview import PreviewRequest, preview_script
from core.runs import create_run

QUICK = "from lib import outputStream\noutputStream.write({'ok': 1})\n"

TRY_TO_READ = '''
import os
from lib import outputStream
targets = {targets!r}
targets["parent environ"] = f"/proc/{{os.getppid()}}/environ"
for label, path in targets.items():
    try:
        if os.path.isdir(path):
            seen = sorted(os.listdir(path))
        else:
            with open(path, "rb") as handle:
                seen = handle.read(1 << 20).decode("utf-8", "replace")
        outputStream.write({{"target": label, "read": True, "seen": str(seen)}})
    except OSError as exc:
        outputStream.write({{"target": label, "read": False, "seen": type(exc).__name__}})
'''


def assert_app_still_runs_feeds(name: str = "after") -> None:
    create_feed(FeedSpec(name=name, script=QUICK))
    run = execute_run(create_run(name).id)
    assert run.status == "succeeded", run.error
    assert run.records_loaded == 1


@pytest.fixture
def app_files(sandbox, tributary):
    """The data dir as a real Tributary has it: key, store, warehouse, another feed's files."""
    create_connection("api", "basic", ConnectionInput(username="ann", password="Sup3r-S3cret-Value"))
    create_feed(FeedSpec(name="other", script=QUICK))
    assert execute_run(create_run("other").id).status == "succeeded"
    settings = get_settings()
    other_work = settings.work_root / "other-feed-run"
    other_work.mkdir(parents=True, exist_ok=True)
    (other_work / "script.py").write_text("OTHER FEED'S SCRIPT\n")
    files = {"key": settings.key_file, "store": settings.data_dir / "tributary.db",
             "warehouse": settings.duckdb_path, "data dir": settings.data_dir,
             "other feed's work dir": other_work, "other feed's script": other_work / "script.py"}
    for path in files.values():
        assert path.exists(), path
    return files


def test_the_apps_files_and_environment_are_out_of_reach(app_files, monkeypatch):
    monkeypatch.setenv("APP_ONLY_MARKER", "app-only-c4f1e9")
    targets = {label: str(path) for label, path in app_files.items()}
    targets["app environ"] = f"/proc/{os.getpid()}/environ"
    result = preview_script(PreviewRequest(script=TRY_TO_READ.format(targets=targets), run_to_completion=True))
    assert result.ok, result.error
    attempts = {record["target"]: record for record in result.records}
    assert set(attempts) == {*targets, "parent environ"}
    for label in app_files:
        assert not attempts[label]["read"], (label, attempts[label])
    assert not attempts["app environ"]["read"], attempts["app environ"]
    # The sandbox's own init (bwrap's, or the container's) may be readable: it holds nothing of the app.
    assert "app-only-c4f1e9" not in json.dumps(result.records)
    assert "TRIBUTARY_DATA_DIR" not in attempts["parent environ"]["seen"]
    assert_app_still_runs_feeds()


def test_the_store_and_another_feeds_script_cannot_be_written(app_files):
    store, script = app_files["store"], app_files["other feed's script"]
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    attempt = (
        "import sqlite3\nfrom lib import outputStream\n"
        f"for path in {[str(store), str(script)]!r}:\n"
        "    try:\n        open(path, 'r+b').write(b'owned')\n        outputStream.write({'wrote': path})\n"
        "    except OSError as exc:\n        outputStream.write({'refused': type(exc).__name__})\n"
        "try:\n"
        f"    sqlite3.connect({str(store)!r}).execute(\"UPDATE feeds SET script = 'owned'\").connection.commit()\n"
        "    outputStream.write({'wrote': 'feeds'})\n"
        "except sqlite3.Error as exc:\n    outputStream.write({'refused': type(exc).__name__})\n"
    )
    result = preview_script(PreviewRequest(script=attempt, run_to_completion=True))
    assert result.ok, result.error
    assert not any("wrote" in record for record in result.records), result.records
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert script.read_text() == "OTHER FEED'S SCRIPT\n"
    assert get_feed("other").script == QUICK
    assert_app_still_runs_feeds()


def test_the_app_cannot_be_killed(sandbox):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        attempt = (
            "import os, signal\n"
            f"for pid in ({os.getpid()}, {bystander.pid}, os.getppid()):\n"
            "    try:\n        os.kill(pid, signal.SIGKILL)\n        print('sent to', pid)\n"
            "    except OSError as exc:\n        print('refused', pid, type(exc).__name__)\n"
        )
        result = preview_script(PreviewRequest(script=attempt, run_to_completion=True, timeout_s=30))
        # The sandbox's own init may take the signal (the run then fails); the app never does.
        assert bystander.poll() is None, "a process of the app's was killed from the sandbox"
        assert result.status in ("succeeded", "failed"), result.error
    finally:
        bystander.kill()
        bystander.wait()
    assert_app_still_runs_feeds()


def test_a_fork_bomb_hits_the_process_limit(sandbox):
    bomb = (
        "import os, time\n"
        "for i in range(500):\n"
        "    if os.fork() == 0:\n        time.sleep(30)\n        os._exit(0)\n"
    )
    started = time.monotonic()
    result = preview_script(PreviewRequest(script=bomb, run_to_completion=True, timeout_s=60))
    assert not result.ok
    assert "process limit of 256 exceeded" in result.error, result.error
    assert time.monotonic() - started < 30  # the children did not outlive the run
    assert_app_still_runs_feeds()


def test_memory_is_limited_for_the_whole_run_children_included(sandbox):
    hog = (
        "import os, time\nkids = []\n"
        "for i in range(4):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        block = bytearray(200 * 1024 * 1024)\n"
        "        for j in range(0, len(block), 4096):\n            block[j] = 1\n"
        "        time.sleep(3)\n        os._exit(0)\n"
        "    kids.append(pid)\n"
        "codes = [os.waitpid(pid, 0)[1] for pid in kids]\n"
        "print('children ended with', codes, flush=True)\n"
        "if any(codes):\n    raise RuntimeError(f'children ended with {codes}')\n"
    )
    result = preview_script(PreviewRequest(script=hog, run_to_completion=True, memory_limit_mb=256, timeout_s=60))
    assert not result.ok, "four children held 800 MB under a 256 MB limit"
    assert "memory limit of 256 MB exceeded" in result.error, result.error
    assert_app_still_runs_feeds()


def test_writing_past_the_work_dir_limit_fails_the_run(sandbox, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_WORK_DIR_LIMIT_MB", "20")
    fill = (
        "import time\nchunk = b'x' * (1024 * 1024)\n"
        "for i in range(200):\n"
        "    with open(f'fill-{i}.bin', 'wb') as handle:\n        handle.write(chunk * 2)\n"
        "    time.sleep(0.02)\n"
    )
    result = preview_script(PreviewRequest(script=fill, run_to_completion=True, timeout_s=60))
    assert not result.ok
    assert result.error == "the run wrote more than 20 MB to its work dir (TRIBUTARY_WORK_DIR_LIMIT_MB)"
    assert_app_still_runs_feeds()


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_daemon_the_script_leaves_is_gone_after_the_run(sandbox):
    marker = f"tributary-daemon-{uuid.uuid4().hex[:8]}"
    daemon = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n"
        "    os._exit(0)\n"
        "import time\ntime.sleep(1)\nprint('daemon started', flush=True)\n"
    )
    result = preview_script(PreviewRequest(script=daemon, run_to_completion=True, timeout_s=60))
    assert result.ok, result.error
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == [], "the script's daemon outlived its run"
    assert_app_still_runs_feeds()


def test_no_network_means_no_loopback_either(sandbox):
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=3).close()
    except OSError:
        missing_service("nothing listens on 127.0.0.1:5432 (PostgreSQL): the attempt would prove nothing")
    attempt = (
        "import socket\nfrom lib import outputStream\n"
        "try:\n    socket.create_connection(('127.0.0.1', 5432), timeout=3).close()\n"
        "    outputStream.write({'reached': True})\n"
        "except OSError as exc:\n    outputStream.write({'reached': False, 'error': type(exc).__name__})\n"
    )
    result = preview_script(PreviewRequest(script=attempt, run_to_completion=True, network=False))
    assert result.ok, result.error
    assert result.records[0]["reached"] is False, result.records


@pytest.mark.parametrize("sandbox", ["subprocess"], indirect=True)  # docker: its bridge network
def test_a_private_network_reaches_out_but_not_the_hosts_loopback(sandbox, monkeypatch):
    """TRIBUTARY_SANDBOX_NETWORK=private: the run's own network (slirp4netns) without the host's
    loopback, where the store and the app may listen; an address of the host's outside loopback
    (here the demo API's, on all interfaces) still answers."""
    import shutil

    from demo.api import DemoAPI

    if not shutil.which("slirp4netns"):
        missing_service("slirp4netns is not installed (apt-get install slirp4netns; scripts/ci-sandbox.sh)")
    monkeypatch.setenv("TRIBUTARY_SANDBOX_NETWORK", "private")
    with DemoAPI(host="0.0.0.0") as api:
        port = api.url.rsplit(":", 1)[1].split("/")[0]
        host_address = socket.gethostbyname(socket.gethostname())
        attempt = (
            "import socket\nfrom lib import outputStream\n"
            f"for host in ('127.0.0.1', '10.0.2.2', {host_address!r}):\n"
            "    try:\n"
            f"        socket.create_connection((host, {port}), timeout=3).close()\n"
            "        outputStream.write({'host': host, 'reached': True})\n"
            "    except OSError as exc:\n"
            "        outputStream.write({'host': host, 'reached': False, 'error': type(exc).__name__})\n"
        )
        result = preview_script(PreviewRequest(script=attempt, run_to_completion=True))
    assert result.ok, result.error
    reached = {record["host"]: record["reached"] for record in result.records}
    assert reached["127.0.0.1"] is False and reached["10.0.2.2"] is False, result.records
    if not host_address.startswith("127."):
        assert reached[host_address] is True, result.records
    assert "network on (its own, through slirp4netns" in result.logs[0]


@pytest.fixture
def host_files(tmp_path):
    """Files of the host a script would like the app to read back as its own."""
    folder = tmp_path / "host"
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps({"status": "succeeded", "records": 999}))
    (folder / "metadata.json").write_text(json.dumps({"stolen": "host-secret-7d1a"}))
    (folder / "part-00000.jsonl").write_text(json.dumps({"stolen": "host-secret-7d1a"}) + "\n")
    return folder


def _at_exit(body: str) -> str:
    """A script that plants its links after the harness wrote its result (atexit runs last)."""
    return "import atexit, os, shutil\nfrom lib import outputStream\noutputStream.write({'own': 1})\n" \
           "def plant():\n" + "".join(f"    {line}\n" for line in body.splitlines()) + "atexit.register(plant)\n"


@pytest.mark.parametrize("name", ["result.json", "metadata.json"])
def test_a_symlinked_result_or_metadata_file_is_not_followed(sandbox, host_files, name):
    target = host_files / name
    plant = f"if os.path.lexists('out/{name}'):\n    os.remove('out/{name}')\nos.symlink({str(target)!r}, 'out/{name}')"
    result = preview_script(PreviewRequest(script=_at_exit(plant), run_to_completion=True))
    assert not result.ok
    assert f"out/{name} is not a regular file" in result.error, result.error
    assert result.count != 999 and result.metadata is None
    assert target.exists()


def test_a_symlinked_spool_part_or_spool_folder_is_not_read(sandbox, host_files):
    for plant in (
        f"os.symlink({str(host_files / 'part-00000.jsonl')!r}, 'out/spool/part-00009.jsonl')",
        f"shutil.rmtree('out/spool')\nos.symlink({str(host_files)!r}, 'out/spool')",
    ):
        result = preview_script(PreviewRequest(script=_at_exit(plant), run_to_completion=True))
        assert "host-secret-7d1a" not in json.dumps(result.records), plant
    assert (host_files / "part-00000.jsonl").exists()


def test_a_run_whose_spool_part_is_a_symlink_fails_and_loads_nothing(sandbox, host_files, tributary):
    plant = f"os.remove('out/spool/part-00000.jsonl')\nos.symlink({str(host_files / 'part-00000.jsonl')!r}, " \
            "'out/spool/part-00000.jsonl')"
    create_feed(FeedSpec(name="planted", script=_at_exit(plant)))
    run = execute_run(create_run("planted").id)
    assert run.status == "failed"
    assert "not a regular file" in run.error, run.error
    assert (host_files / "part-00000.jsonl").read_text().startswith('{"stolen"')
    assert_app_still_runs_feeds()


# ---------------------------------------------------------------- the subprocess runner's own


@pytest.mark.parametrize("sandbox", ["subprocess"], indirect=True)  # the bubblewrap sandbox's own line
def test_the_log_names_the_sandbox_and_its_limits_first(sandbox):
    result = preview_script(PreviewRequest(script=QUICK, memory_limit_mb=256, network=False))
    assert result.ok, result.error
    first = result.logs[0]
    assert first.startswith("sandbox: bubblewrap; memory 256 MB per run"), first
    assert "processes 256" in first and "network off" in first and "work dir 2048 MB" in first


def test_without_bubblewrap_a_shared_tributary_refuses_to_run_scripts_unisolated(tributary, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_RUNNER", "subprocess")
    monkeypatch.setenv("TRIBUTARY_SANDBOX_BWRAP", "/nonexistent/bwrap")
    monkeypatch.setenv("TRIBUTARY_PASSWORD_HASH", "pbkdf2_sha256$1$x$y")
    result = preview_script(PreviewRequest(script=QUICK))
    assert not result.ok
    assert "TRIBUTARY_ALLOW_UNISOLATED" in result.error and "bubblewrap is not installed" in result.error

    monkeypatch.setenv("TRIBUTARY_ALLOW_UNISOLATED", "1")
    allowed = preview_script(PreviewRequest(script=QUICK))
    assert allowed.ok, allowed.error
    assert allowed.logs[0].startswith("sandbox: not isolated: bubblewrap is not installed")


def test_without_bubblewrap_or_a_login_scripts_run_and_the_log_says_unisolated(tributary, monkeypatch, tmp_path):
    monkeypatch.setenv("TRIBUTARY_RUNNER", "subprocess")
    monkeypatch.setenv("TRIBUTARY_SANDBOX_BWRAP", "/nonexistent/bwrap")
    monkeypatch.delenv("TRIBUTARY_PASSWORD_HASH", raising=False)
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    result = preview_script(PreviewRequest(script=QUICK))
    assert result.ok, result.error
    assert result.logs[0] == "sandbox: not isolated: bubblewrap is not installed at /nonexistent/bwrap " \
                             "(apt-get install bubblewrap)"
