"""The runner contract suite runs once per runner. A runner whose engine is missing skips on
a user's machine (with a message naming it) and fails in CI."""

from __future__ import annotations

import io
import os
import uuid

import pytest

from common.errors import TributaryError
from demo.api import DemoAPI
from runners import get_runner
from tests.conftest import missing_service

RUNNER_NAMES = [name for name in os.environ.get("TRIBUTARY_TEST_RUNNERS", "subprocess,subprocess-unisolated,docker")
                .split(",") if name]
BASE_IMAGE = os.environ.get("TRIBUTARY_DOCKER_IMAGE") or "tributary-runner:latest"


def docker_engine():
    """The Docker engine, or a skip (a failure in CI) naming what is missing."""
    try:
        from runners.docker_engine import ping

        return ping()
    except ImportError as exc:
        missing_service(f"Docker engine not reachable: the docker SDK is not installed ({exc})")
    except TributaryError as exc:
        missing_service(str(exc))


def _bridge_gateway() -> str | None:
    if "docker" not in RUNNER_NAMES:
        return None
    try:
        from runners.docker_engine import bridge_gateway

        return bridge_gateway()
    except ImportError:
        return None


@pytest.fixture(scope="session")
def demo_api():
    """The demo API where both runners reach it. A container on the default bridge cannot
    reach the host's loopback, by design; the bridge's gateway is an address of the host, so
    scripts on the subprocess runner reach it as well."""
    with DemoAPI(host=_bridge_gateway() or "127.0.0.1") as api:
        yield api


@pytest.fixture(scope="session")
def docker_session_image():
    """This session's runner image: the base image plus a label, so a new image id, in a
    repository of the session's own (tributary-test-<uuid8>). Dependency images are keyed by
    the base's id and named after its repository, so each session builds its own from scratch
    (and removes them at the end) without touching images a real Tributary or another test
    session on this engine uses: the start-up clean-up of one repository's stale dependency
    images cannot reach another session's."""
    from docker.errors import ImageNotFound

    engine = docker_engine()
    try:
        engine.images.get(BASE_IMAGE)
    except Exception as exc:  # noqa: BLE001 - ImageNotFound, or the engine went away
        missing_service(f"Docker engine has no runner image {BASE_IMAGE} (run docker/build-base-image.sh): {exc}")
    session = uuid.uuid4().hex[:8]
    tag = f"tributary-test-{session}:runner"
    dockerfile = f"FROM {BASE_IMAGE}\nLABEL tributary.test-session={session}\n"
    image, _ = engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True)
    try:
        yield tag
    finally:
        # A failed test may leave a container behind; it would pin the images.
        for container in engine.containers.list(all=True, filters={"ancestor": image.id}):
            container.remove(force=True)
        # Dependency images and the cached steps of failed builds inherit the session label;
        # newest first, so that children go before their parents.
        leftovers = engine.images.list(all=True, filters={"label": f"tributary.test-session={session}"})
        for leftover in sorted(leftovers, key=lambda img: img.attrs["Created"], reverse=True):
            try:
                engine.images.remove(leftover.id, force=True)
            except ImageNotFound:
                pass  # untagged parents go with their last child


@pytest.fixture(params=RUNNER_NAMES)
def runner_name(request, tributary, monkeypatch):
    """An isolated Tributary whose runs use the given runner; yields the runner's name."""
    monkeypatch.setenv("TRIBUTARY_RUNNER", request.param)
    if request.param == "docker":
        monkeypatch.setenv("TRIBUTARY_DOCKER_IMAGE", request.getfixturevalue("docker_session_image"))
        monkeypatch.delenv("TRIBUTARY_DOCKER_NETWORK", raising=False)  # the default, bridge
    try:
        get_runner(request.param).check()
    except (TributaryError, ImportError) as exc:
        missing_service(f"the {request.param} runner cannot run here: {exc}")
    return request.param


@pytest.fixture
def docker_runner(monkeypatch, tributary, docker_session_image):
    """An isolated Tributary on the docker runner, for tests of the docker runner alone."""
    monkeypatch.setenv("TRIBUTARY_RUNNER", "docker")
    monkeypatch.setenv("TRIBUTARY_DOCKER_IMAGE", docker_session_image)
    monkeypatch.delenv("TRIBUTARY_DOCKER_NETWORK", raising=False)
    return tributary
