"""The red-team suite runs over the sandboxes a shared Tributary uses: the `subprocess` runner
(bubblewrap) and the docker runner. A sandbox whose engine is missing skips on a user's machine
(with a message naming it) and fails in CI."""

from __future__ import annotations

import pytest

from common.errors import TributaryError
from runners import get_runner
from tests.conftest import missing_service
from tests.runners.conftest import docker_session_image  # noqa: F401  (a fixture this suite uses)

SANDBOXES = ["subprocess", "docker"]


@pytest.fixture(params=SANDBOXES)
def sandbox(request, tributary, monkeypatch):
    """An isolated Tributary whose runs use the given sandbox; yields the runner's name."""
    monkeypatch.setenv("TRIBUTARY_RUNNER", request.param)
    if request.param == "docker":
        monkeypatch.setenv("TRIBUTARY_DOCKER_IMAGE", request.getfixturevalue("docker_session_image"))
        monkeypatch.delenv("TRIBUTARY_DOCKER_NETWORK", raising=False)
    if request.param == "subprocess":
        from common.settings import get_settings
        from runners.sandbox import isolation_status

        status = isolation_status(get_settings())
        if not status.isolated:
            missing_service(f"the subprocess runner is not isolated here: {status.problem}")
    try:
        get_runner(request.param).check()
    except (TributaryError, ImportError) as exc:
        missing_service(f"the {request.param} runner cannot run here: {exc}")
    return request.param
