"""The CLI says which worker ran each run: its host and pid, in the `runs` table, in `run`'s
line and in --json (where a run no process took has none)."""

from __future__ import annotations

import json
import socket

from tests.test_cli import cli


def test_runs_show_the_worker_that_ran_each_run(tmp_path):
    data = tmp_path / "data"
    assert cli(data, "feeds", "create", "orders", "--script", "print(1)").returncode == 0
    ran = cli(data, "run", "orders")
    assert ran.returncode == 0, ran.stderr
    assert f"(on {socket.gethostname()} (pid " in ran.stdout

    [view] = json.loads(cli(data, "--json", "runs").stdout)
    assert view["worker"]["host"] == socket.gethostname() and isinstance(view["worker"]["pid"], int)
    label = f"{socket.gethostname()} (pid {view['worker']['pid']})"

    header, row = cli(data, "runs").stdout.splitlines()
    assert "WORKER" in header.split() and label in row
    shown = json.loads(cli(data, "runs", view["id"]).stdout)
    assert shown["worker"] == view["worker"]
