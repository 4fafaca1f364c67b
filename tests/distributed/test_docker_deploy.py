"""The deployment image (deploy/Dockerfile) works as deploy/compose.yaml uses it: built here on
the runner image's Debian base (nothing can be pulled), two worker containers with the
compose file's privileges execute runs that this process, as the app, sends through a real
Redis, each run in a bubblewrap sandbox inside its container.

The containers use the host's network to reach this test's Redis and PostgreSQL on 127.0.0.1
(compose gives them a network of their own and service names instead).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from core import bootstrap
from core.feeds import FeedSpec, create_feed
from core.runs import FINAL_STATUSES, get_run, read_log
from tests.conftest import missing_service
from tests.distributed.conftest import ROOT
from tests.helpers import wait_until
from tests.runners.conftest import docker_engine

ROOTFS_IMAGE = os.environ.get("TRIBUTARY_ROOTFS_IMAGE", "tributary-debian:bookworm")
SCRIPT = """
import time
from lib import outputStream
time.sleep(1)  # long enough that one worker cannot take all the runs
for i in range(100):
    outputStream.write({"id": i})
"""


def _ca_bundle() -> Path | None:
    for name in ("TRIBUTARY_DOCKER_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(name) and os.environ[name] != "none":
            return Path(os.environ[name])
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.exists() else None


@pytest.fixture(scope="module")
def deploy_image(tmp_path_factory):
    """deploy/Dockerfile built from the project's tracked files, in a repository of its own."""
    docker_engine()
    if subprocess.run(["docker", "image", "inspect", ROOTFS_IMAGE], capture_output=True).returncode != 0:
        missing_service(f"Docker: the base image {ROOTFS_IMAGE} is missing (docker/build-base-image.sh imports it)")
    context = tmp_path_factory.mktemp("deploy-context")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, context / name)
    if (bundle := _ca_bundle()) is not None:
        shutil.copy(bundle, context / "docker" / "build-ca.crt")
    tag = f"tributary-deploy-test-{uuid.uuid4().hex[:8]}:latest"
    built = subprocess.run(["docker", "build", "--force-rm", "-q", "-f", "deploy/Dockerfile",
                            "--build-arg", f"BASE={ROOTFS_IMAGE}", "-t", tag, str(context)],
                           capture_output=True, text=True, env=dict(os.environ, DOCKER_BUILDKIT="0"))
    assert built.returncode == 0, built.stderr[-3000:]
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def _container_options() -> list[str]:
    """The privileges compose.yaml gives the Tributary services."""
    service = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["x-tributary"]
    options = [flag for cap in service["cap_add"] for flag in ("--cap-add", cap)]
    options += [flag for opt in service["security_opt"] for flag in ("--security-opt", opt)]
    options += [flag for device in service["devices"] for flag in ("--device", device)]
    return options


@pytest.fixture
def cluster_hosts():
    return ()  # the workers are containers


def test_two_worker_containers_of_the_deploy_image_execute_runs_in_their_sandbox(deploy_image, cluster):
    env = [flag for key, value in os.environ.items() if key.startswith("TRIBUTARY_") and key != "TRIBUTARY_DATA_DIR"
           for flag in ("-e", f"{key}={value}")]
    containers = []
    try:
        for _ in range(2):
            containers.append(subprocess.run(
                ["docker", "run", "-d", "--network", "host", *_container_options(), *env, deploy_image,
                 "python", "-m", "core.worker"], capture_output=True, text=True, check=True).stdout.strip())
        for container in containers:
            wait_until(lambda: " ready." in _logs(container), 60, lambda: _logs(container))
        names = [f"dock{i}" for i in range(4)]
        for name in names:
            create_feed(FeedSpec(name=name, script=SCRIPT, destinations=["postgres"]))
        app = bootstrap.build(background=True).start()
        try:
            run_ids = [app.start_run(name).id for name in names]
            wait_until(lambda: all(get_run(r).status in FINAL_STATUSES for r in run_ids), 120,
                       lambda: "\n".join(_logs(c) for c in containers))
        finally:
            app.stop()
        runs = [get_run(run_id) for run_id in run_ids]
        assert [(run.status, run.error, run.records_loaded) for run in runs] == [("succeeded", None, 100)] * 4
        assert len({run.worker for run in runs}) == 2  # both containers executed runs
        for run in runs:
            assert "sandbox: bubblewrap" in read_log(run.id)[0]  # isolated inside its container
    finally:
        for container in containers:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def _logs(container: str) -> str:
    result = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    return result.stdout + result.stderr
