"""Runners by name. Implementations are imported only when asked for, so that the embedded
set-up never needs the docker SDK."""

from __future__ import annotations

from importlib import import_module

from common.errors import TributaryError
from runners.base import Runner

RUNNERS = {
    "subprocess": "runners.subprocess_runner:IsolatedSubprocessRunner",  # bubblewrap (runners/sandbox.py)
    "subprocess-unisolated": "runners.subprocess_runner:SubprocessRunner",
    "docker": "runners.docker_runner:DockerRunner",
}


def get_runner(name: str, settings=None) -> Runner:
    if name not in RUNNERS:
        raise TributaryError(f"runner: unknown runner {name!r}; choose one of {', '.join(RUNNERS)}")
    module_name, _, class_name = RUNNERS[name].partition(":")
    return getattr(import_module(module_name), class_name)(settings)
