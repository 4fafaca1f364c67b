"""Dependency environments that no feed or draft names, and that nothing used for two weeks,
are removed at start-up; the rest stay (runners/envs.py, core/housekeeping.py)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from app_pages.view_models import drafts, feed_editor
from core import housekeeping
from core.feeds import FeedSpec, create_feed
from common.settings import get_settings
from runners.envs import UNUSED_FOR_S, dependency_hash, ensure_environment, remove_unused_environments

LONG_AGO = time.time() - UNUSED_FOR_S - 3600


def _environment(envs_dir: Path, dependencies: list[str], last_used: float, finished: bool = True) -> Path:
    """An environment as ensure_environment leaves it (its packages aside)."""
    env_dir = envs_dir / dependency_hash(dependencies)
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "bin" / "python").write_text("")
    if finished:
        (env_dir / ".ready").write_text("\n".join(dependencies))
        os.utime(env_dir / ".ready", (last_used, last_used))
    os.utime(env_dir, (last_used, last_used))
    return env_dir


def test_only_environments_unnamed_and_unused_for_two_weeks_go(tmp_path):
    envs = tmp_path / "envs"
    named_old = _environment(envs, ["six==1.16.0"], LONG_AGO)
    unnamed_old = _environment(envs, ["tinydb==4.8.0"], LONG_AGO)
    unnamed_recent = _environment(envs, ["tinydb==4.7.0"], time.time() - 3600)
    unfinished_old = _environment(envs, ["tinydb==4.6.0"], LONG_AGO, finished=False)

    removed = remove_unused_environments(envs, [["six==1.16.0"], []])

    assert sorted(removed) == sorted([unnamed_old.name, unfinished_old.name])
    assert named_old.exists() and unnamed_recent.exists()
    assert not unnamed_old.exists() and not unfinished_old.exists()


def test_an_environment_being_built_or_used_is_left_alone(tmp_path):
    envs = tmp_path / "envs"
    busy = _environment(envs, ["tinydb==4.8.0"], LONG_AGO)
    with open(envs / f"{busy.name}.lock", "w") as lock:  # what ensure_environment holds
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert remove_unused_environments(envs, []) == []
    assert busy.exists()
    assert remove_unused_environments(envs, []) == [busy.name]  # the next start-up


def test_each_use_counts_as_recent(tmp_path):
    envs = tmp_path / "envs"
    env_dir = _environment(envs, ["tinydb==4.8.0"], LONG_AGO)
    logs = []

    python = ensure_environment(envs, ["tinydb==4.8.0"], logs.append)

    assert python == str(env_dir / "bin" / "python")
    assert any("using cached environment" in line for line in logs)
    assert remove_unused_environments(envs, []) == []
    assert env_dir.exists()


def test_start_up_keeps_what_feeds_and_drafts_name(tributary, monkeypatch):
    monkeypatch.setenv(housekeeping.DEMO_API_SWITCH, "0")
    envs = get_settings().envs_dir
    create_feed(FeedSpec(name="orders", script="print(1)", dependencies=["six==1.16.0"]))
    draft = feed_editor.new_draft("someone")
    draft.dependencies = ["tinydb==4.7.0"]
    feed_editor.persist(draft)
    of_feed = _environment(envs, ["six==1.16.0"], LONG_AGO)
    of_draft = _environment(envs, ["tinydb==4.7.0"], LONG_AGO)
    of_nothing = _environment(envs, ["tinydb==4.8.0"], LONG_AGO)

    housekeeping.start_services(drafts.dependency_sets)
    try:
        assert of_feed.exists() and of_draft.exists()
        assert not of_nothing.exists()
    finally:
        housekeeping.stop_services()
