"""What the server process starts once, from app.py's lifespan, and stops at shutdown: the
process's services (core/bootstrap.py, in the background), the clean-up of what earlier runs
left (containers, old dependency images and environments), and the bundled demo API.

Kept here rather than in app.py: under `python app.py` the launcher module is __main__, and a
second import of it would start everything twice.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

from sqlalchemy import text

from common.errors import TributaryError
from common.settings import get_settings, make_private
from core import bootstrap, feeds, workers
from demo.api import DemoAPI
from storage.db import get_engine

log = logging.getLogger("tributary.server")

DEMO_API_SWITCH = "TRIBUTARY_DEMO_API"  # "0" leaves the bundled demo API off

_lock = threading.Lock()
_demo_api: DemoAPI | None = None
_services: bootstrap.Services | None = None


def _start_demo_api(port: int) -> DemoAPI | None:
    try:
        return DemoAPI(port=port).start()
    except OSError as exc:
        # Another process (often an earlier Tributary) already serves the port: use it.
        log.warning("demo API not started on port %s: %s", port, exc)
        return None


def _named_dependency_sets(extra: Callable[[], list[list[str]]]) -> list[list[str]]:
    """The dependency sets that feeds (and the caller's drafts) name: their environments and
    images stay."""
    return [list(feed.dependencies) for feed in feeds.list_feeds()] + extra()


def _remove_docker_leftovers(named: list[list[str]]) -> None:
    """Remove the containers of runs a dead process left on the engine, and the dependency
    images no run can use again (an earlier runner image's) or that nothing named or used for
    two weeks. An unreachable engine must not stop the app: the Settings page and each docker
    run report it, the first run that reaches the engine removes such containers then, and the
    images wait for the next start."""
    try:
        from runners.docker_runner import remove_leftovers, remove_old_images

        removed = remove_leftovers()
    except (ImportError, TributaryError) as exc:
        log.warning("docker runner: leftover containers not checked: %s", exc)
        return
    if removed:
        log.warning("removed %d container(s) left by runs of a process that died: %s", len(removed), ", ".join(removed))
    try:
        images = remove_old_images(named)
    except TributaryError as exc:
        log.warning("docker runner: old dependency images not checked: %s", exc)
        return
    if images:
        log.info("removed %d dependency image(s) no run can use or nothing used for two weeks: %s", len(images),
                 ", ".join(images))


def _remove_leftover_cgroups() -> None:
    """Remove the empty cgroups of runs whose process died before it could (runners/sandbox.py)."""
    from runners.sandbox import remove_leftover_cgroups

    try:
        remove_leftover_cgroups()
    except OSError as exc:
        log.warning("sandbox: leftover cgroups not checked: %s", exc)


def _remove_unused_environments(named: list[list[str]]) -> None:
    """Remove the dependency environments (subprocess runner) that no feed or draft names and
    that nothing has used for two weeks (runners/envs.py)."""
    from runners.envs import remove_unused_environments

    try:
        removed = remove_unused_environments(get_settings().envs_dir, named)
    except OSError as exc:  # a disk problem must not stop the app; the next start-up tries again
        log.warning("dependency environments not checked: %s", exc)
        return
    if removed:
        log.info("removed %d dependency environment(s) no feed or draft uses: %s", len(removed), ", ".join(removed))


def start_services(named_dependency_sets: Callable[[], list[list[str]]] = list) -> dict:
    """Build and start the process's services in the background (recovery of dead runs and
    deliveries, the run queue, the scheduler), remove the containers dead runs left and the
    dependency images and environments nothing used for two weeks, and start the demo API
    (unless TRIBUTARY_DEMO_API=0). `named_dependency_sets` adds the sets that unsaved work (the
    editor's drafts) names. Idempotent within a process."""
    global _demo_api, _services
    with _lock:
        if _services is not None:
            return status()
        settings = get_settings()
        # Before anything writes there (the store, the key, logs, the warehouse): private,
        # and so is what was left there readable by others.
        make_private(settings.data_dir, tighten_existing=True)
        services = bootstrap.build(settings, background=True)
        services.start()
        named = _named_dependency_sets(named_dependency_sets)
        if settings.runner == "docker":
            _remove_docker_leftovers(named)
        _remove_unused_environments(named)
        _remove_leftover_cgroups()
        if os.environ.get(DEMO_API_SWITCH, "1") != "0":
            _demo_api = _start_demo_api(settings.demo_api_port)
        _services = services
        return status()


def stop_services() -> None:
    global _demo_api, _services
    with _lock:
        if _services is not None:
            _services.stop(cancel_running=True)
            _services = None
        if _demo_api is not None:
            _demo_api.stop()
            _demo_api = None


def demo_api_url() -> str | None:
    return _demo_api.url if _demo_api is not None and _demo_api.running else None


def status() -> dict:
    return {"started": _services is not None, "demo_api": demo_api_url()}


def health() -> dict:
    """For /api/health: the store answers, what this process runs, and whether the
    `subprocess` runner's sandbox isolates scripts here (runners/sandbox.py)."""
    from runners.sandbox import isolation_status

    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
    settings = get_settings()
    body = {"status": "ok", "store": "ok", **status(), "runner": settings.runner,
            "sandbox": isolation_status(settings).as_dict(), "executor": settings.executor}
    if settings.executor == "celery":
        body.update(_broker_health())
    return body


def _broker_health() -> dict:
    """The broker (reachable or not, its URL masked) and the workers seen in the last minute.
    A broker that does not answer makes the status say so: no run reaches a worker then."""
    from core.celery_executor import broker_url

    broker = workers.broker_health(broker_url())
    found = {"broker": broker, "workers": len(workers.seen_workers())}
    if not broker["reachable"]:
        found.update(status="error", error=f"the broker at {broker['url']} is not reachable: {broker['error']}")
    return found
