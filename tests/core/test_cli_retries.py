"""A CLI run of a feed with retries: the CLI has no dispatcher, so `run` executes the retries
itself after their backoff, and the feed is free again afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAILING = "from lib import outputStream\noutputStream.write({'attempt': 1})\nraise RuntimeError('the API is down')\n"


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update(TRIBUTARY_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_failing_cli_run_runs_its_retries_and_leaves_the_feed_free(tmp_path):
    data = tmp_path / "data"
    script = tmp_path / "flaky.py"
    script.write_text(FAILING)
    created = cli(data, "feeds", "create", "flaky", "--script", f"@{script}", "--retries", "2", "--retry-backoff", "1")
    assert created.returncode == 0, created.stderr

    first = cli(data, "--json", "run", "flaky")
    assert first.returncode != 0
    assert first.stderr.count("starts after its backoff") == 2, first.stderr

    history = json.loads(cli(data, "--json", "runs", "--feed", "flaky").stdout)
    assert sorted((r["attempt"], r["status"]) for r in history) == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert not [r for r in history if r["status"] == "queued"], "a retry was left queued"

    script.write_text("from lib import outputStream\noutputStream.write({'ok': True})\n")
    assert cli(data, "feeds", "edit", "flaky", "--script", f"@{script}").returncode == 0
    second = cli(data, "--json", "run", "flaky")
    assert second.returncode == 0, second.stdout + second.stderr
    assert json.loads(second.stdout)["status"] == "succeeded"
