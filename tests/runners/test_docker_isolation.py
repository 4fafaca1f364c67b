"""What a script in the docker runner cannot do: read the app's files or another feed's, act
as root, outgrow its limits, or reach what its network mode keeps out. After each attempt the
app carries on running feeds."""

import json
import threading
import time
from pathlib import Path

import docker

from core.connections import ConnectionInput, create_connection
from core.feeds import FeedSpec, create_feed
from core.runs import cancel_run, create_run, wait_for_run
from core.preview import PreviewRequest, preview_script
from core.bootstrap import execute_run
from common.settings import get_settings
from demo.api import DemoAPI
from runners.docker_engine import RUN_LABEL

TRY_TO_READ = '''
import os
from lib import outputStream
for label, path in {targets!r}.items():
    try:
        if os.path.isdir(path):
            seen = sorted(os.listdir(path))
        else:
            with open(path, "rb") as handle:
                seen = handle.read().decode("utf-8", "replace")
        outputStream.write({{"target": label, "read": True, "seen": str(seen)}})
    except OSError as exc:
        outputStream.write({{"target": label, "read": False, "seen": type(exc).__name__}})
'''

WAITS_FOR_CANCEL = "from lib import connection\nimport time\nprint('waiting', flush=True)\ntime.sleep(120)\n"
QUICK = "from lib import outputStream\noutputStream.write({'ok': 1})\n"


def read_attempts(targets: dict) -> dict:
    result = preview_script(PreviewRequest(script=TRY_TO_READ.format(targets=targets), run_to_completion=True))
    assert result.ok, result.error
    return {record["target"]: record for record in result.records}


def wait_for_log(run, text: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not (Path(run.log_path).exists() and text in Path(run.log_path).read_text()):
        assert time.monotonic() < deadline, f"{text!r} never appeared in the run's log"
        time.sleep(0.1)


def assert_app_still_runs_feeds(name: str = "after") -> None:
    create_feed(FeedSpec(name=name, script=QUICK))
    run = execute_run(create_run(name).id)
    assert run.status == "succeeded", run.error
    assert run.records_loaded == 1


def containers_of(run_id: str) -> list:
    return docker.from_env().containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def test_a_script_cannot_read_the_store_the_key_or_another_feeds_work_dir(docker_runner):
    create_connection("api", "basic", ConnectionInput(username="ann", password="Victims-Password-123"))
    create_feed(FeedSpec(name="victim", script=WAITS_FOR_CANCEL, connection="api"))
    victim = create_run("victim")
    thread = threading.Thread(target=execute_run, args=(victim.id,))
    thread.start()
    try:
        wait_for_log(victim, "waiting")
        settings = get_settings()
        victim_dir = settings.work_root / victim.id
        assert (victim_dir / "input.json").exists()  # the other feed's material is on the host
        attempts = read_attempts({
            "store": str(settings.data_dir / "tributary.db"),
            "key": str(settings.key_file),
            "data dir": str(settings.data_dir),
            "work dirs": str(settings.work_root),
            "victim's input": str(victim_dir / "input.json"),
            "victim's work dir": str(victim_dir),
            "own input": "/work/input.json",
        })
    finally:
        cancel_run(victim.id)
        thread.join(60)
    assert attempts.pop("own input")["read"]  # the probe works: it reads what it may
    assert {label: a["read"] for label, a in attempts.items()} == dict.fromkeys(attempts, False)
    assert not any("Victims-Password-123" in a["seen"] for a in attempts.values())
    assert wait_for_run(victim.id, timeout_s=30).status == "cancelled"
    assert_app_still_runs_feeds()


def test_a_script_runs_unprivileged_on_a_read_only_system(docker_runner):
    script = '''
import os
from lib import outputStream
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
def try_write(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        return "written"
    except OSError as exc:
        return exc.strerror
outputStream.write({"uid": os.getuid(), "caps": status["CapEff"].strip(),
                    "no_new_privs": status["NoNewPrivs"].strip(),
                    "etc": try_write("/etc/evil"), "usr": try_write("/usr/bin/evil"),
                    "tmp": try_write("/tmp/scratch"), "work": try_write("/work/scratch")})
'''
    result = preview_script(PreviewRequest(script=script))
    assert result.ok, result.error
    assert result.records == [{"uid": result.records[0]["uid"], "caps": "0000000000000000", "no_new_privs": "1",
                               "etc": "Read-only file system", "usr": "Read-only file system",
                               "tmp": "written", "work": "written"}]
    assert result.records[0]["uid"] != 0


def test_the_container_carries_the_feeds_limits(docker_runner, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_DOCKER_CPUS", "0.5")
    monkeypatch.setenv("TRIBUTARY_DOCKER_PIDS_LIMIT", "64")
    script = '''
import os
from lib import outputStream
def read(*candidates):
    for path in candidates:
        if os.path.exists(path):
            return open(path).read().split()
if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # cgroup v2
    quota, period = read("/sys/fs/cgroup/cpu.max")
    memory, pids = read("/sys/fs/cgroup/memory.max")[0], read("/sys/fs/cgroup/pids.max")[0]
else:
    quota, period = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")[0], read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")[0]
    memory = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")[0]
    pids = read("/sys/fs/cgroup/pids/pids.max")[0]
outputStream.write({"cpus": int(quota) / int(period), "memory_mb": int(memory) // 2**20, "pids": int(pids)})
'''
    result = preview_script(PreviewRequest(script=script, memory_limit_mb=300))
    assert result.ok, result.error
    assert result.records == [{"cpus": 0.5, "memory_mb": 300, "pids": 64}]


def test_a_fork_bomb_is_stopped_by_the_process_limit(docker_runner):
    create_feed(FeedSpec(name="forks", script="import os\nwhile True:\n    os.fork()\n", timeout_s=120))
    run = execute_run(create_run("forks").id)
    assert run.status == "failed"
    assert "process limit of 256 exceeded" in run.error
    assert containers_of(run.id) == []
    assert_app_still_runs_feeds()


def test_a_fork_bomb_that_ignores_failures_ends_at_the_time_limit(docker_runner):
    script = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    create_feed(FeedSpec(name="stubborn", script=script, timeout_s=5))
    run = execute_run(create_run("stubborn").id)
    assert run.status == "failed"
    assert "timed out after 5 s" in run.error
    assert containers_of(run.id) == []
    assert_app_still_runs_feeds()


def test_a_memory_bomb_is_reported_as_the_memory_limit(docker_runner):
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(20 * 1024 * 1024))\n"
    create_feed(FeedSpec(name="hungry", script=script, memory_limit_mb=128, timeout_s=120))
    run = execute_run(create_run("hungry").id)
    assert run.status == "failed"
    assert "memory limit of 128 MB exceeded" in run.error
    assert containers_of(run.id) == []
    assert_app_still_runs_feeds()


CALL = '''
import requests
from lib import outputStream
for label, url in {urls!r}.items():
    try:
        outputStream.write({{"to": label, "status": requests.get(url + "/health", timeout=5).status_code}})
    except requests.RequestException as exc:
        outputStream.write({{"to": label, "status": type(exc).__name__}})
'''


def reach(urls: dict) -> dict:
    result = preview_script(PreviewRequest(script=CALL.format(urls=urls), run_to_completion=True))
    assert result.ok, result.error
    return {record["to"]: record["status"] for record in result.records}


def test_the_default_network_reaches_out_but_not_the_hosts_loopback(docker_runner, demo_api):
    with DemoAPI(host="127.0.0.1") as loopback_only:
        assert reach({"host": demo_api.url, "loopback": loopback_only.url}) == {
            "host": 200, "loopback": "ConnectionError"}


def test_host_network_mode_reaches_the_hosts_loopback(docker_runner, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_DOCKER_NETWORK", "host")
    with DemoAPI(host="127.0.0.1") as loopback_only:
        assert reach({"loopback": loopback_only.url}) == {"loopback": 200}


def test_a_job_without_network_reaches_nothing(docker_runner, demo_api):
    from runners.base import ScriptJob
    from runners.docker_runner import DockerRunner

    settings = get_settings()
    job = ScriptJob(run_id="offline", feed_name="offline", script=CALL.format(urls={"host": demo_api.url}),
                    work_dir=settings.work_root / "offline", network=False, timeout_s=60)
    outcome = DockerRunner(settings).start(job, lambda line: None).wait()
    assert outcome.ok, outcome.error
    records = [json.loads(line) for path in outcome.spool_files() for line in path.read_text().splitlines()]
    assert records == [{"to": "host", "status": "ConnectionError"}]
