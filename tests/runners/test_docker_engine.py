"""The docker runner and its engine: a clear message when the engine is unreachable or the
runner image missing (subprocess feeds unaffected), cancel kills the container, and the
containers of an app killed mid-run are removed at the next start."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import pytest

from common.errors import TributaryError
from core.feeds import FeedSpec, create_feed
from core.runs import cancel_run, create_run, wait_for_run
from core.preview import PreviewRequest, preview_script
from core.bootstrap import execute_run
from runners import get_runner
from runners.docker_engine import RUN_LABEL, SANDBOX_LABEL

ROOT = Path(__file__).resolve().parents[2]
QUICK = "from lib import outputStream\noutputStream.write({'ok': 1})\n"
SLOW = "import time\nprint('waiting', flush=True)\ntime.sleep(300)\n"


def wait_until(condition, what: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)
    return found


def test_an_unreachable_engine_is_reported_and_subprocess_feeds_carry_on(tributary, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setenv("TRIBUTARY_RUNNER", "docker")
    expected = f"Docker engine not reachable at unix://{tmp_path}/no-engine.sock"

    with pytest.raises(TributaryError, match=expected):
        get_runner("docker").check()  # what the settings page shows
    result = preview_script(PreviewRequest(script=QUICK))
    assert not result.ok and expected in result.error
    create_feed(FeedSpec(name="docker_feed", script=QUICK))
    run = execute_run(create_run("docker_feed").id)
    assert run.status == "failed" and expected in run.error
    assert expected in Path(run.log_path).read_text()

    monkeypatch.setenv("TRIBUTARY_RUNNER", "subprocess")
    get_runner("subprocess").check()
    assert execute_run(create_run("docker_feed").id).status == "succeeded"


def test_a_missing_runner_image_says_how_to_build_it(docker_runner, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_DOCKER_IMAGE", "tributary-runner:no-such-tag")
    with pytest.raises(TributaryError, match="docker/build-base-image.sh"):
        get_runner("docker").check()
    result = preview_script(PreviewRequest(script=QUICK))
    assert not result.ok
    assert "the runner image tributary-runner:no-such-tag is not on the Docker engine" in result.error


def sandbox_containers(**labels) -> list:
    wanted = [SANDBOX_LABEL] + [f"{key}={value}" for key, value in labels.items()]
    return docker.from_env().containers.list(all=True, filters={"label": wanted})


def test_cancel_kills_and_removes_the_container(docker_runner):
    create_feed(FeedSpec(name="slow", script=SLOW))
    run = create_run("slow")
    thread = threading.Thread(target=execute_run, args=(run.id,))
    thread.start()
    running = wait_until(lambda: [c for c in sandbox_containers(**{RUN_LABEL: run.id}) if c.status == "running"],
                         "the run's container to start")
    assert len(running) == 1
    wait_until(lambda: "waiting" in Path(run.log_path).read_text(), "the script's first line")
    cancel_run(run.id)
    thread.join(30)
    assert wait_for_run(run.id, timeout_s=10).status == "cancelled"
    assert sandbox_containers(**{RUN_LABEL: run.id}) == []


def cli(env: dict, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_containers_of_a_killed_app_are_removed_at_the_next_start(docker_runner):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    create_feed(FeedSpec(name="orphaned", script=SLOW))
    create_feed(FeedSpec(name="next", script=QUICK))
    app = cli(env, "run", "orphaned")
    try:
        wait_until(lambda: sandbox_containers(**{"tributary.feed": "orphaned"}), "the run's container")
    finally:
        app.send_signal(signal.SIGKILL)  # no clean-up code of the app runs
        app.wait()
        app.stdout.close()
    assert [c.status for c in sandbox_containers(**{"tributary.feed": "orphaned"})] == ["running"]

    next_app = cli(env, "run", "next")
    output = next_app.communicate(timeout=120)[0]
    assert next_app.returncode == 0, output
    assert sandbox_containers(**{"tributary.feed": "orphaned"}) == []
