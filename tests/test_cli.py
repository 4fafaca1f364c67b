"""The command line, driven as a user would: a separate process per command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import example, warehouse_rows

ROOT = Path(__file__).resolve().parent.parent


def cli_env(data_dir: Path) -> dict:
    """The environment of a CLI process: this one's, but for Tributary's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update(TRIBUTARY_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    return env


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=data_dir.parent, env=cli_env(data_dir),
                          input=stdin, capture_output=True, text=True, timeout=300)


def script_file(tmp_path: Path, name: str, api_url: str) -> str:
    path = tmp_path / name
    path.write_text(example(name, api_url))
    return f"@{path}"


def test_peak_public_apis_example_loads_every_entry(tmp_path, demo_api):
    data = tmp_path / "data"
    created = cli(data, "feeds", "create", "entries", "--script", script_file(tmp_path, "public_apis_entries.py", demo_api.url))
    assert created.returncode == 0, created.stderr
    ran = cli(data, "--json", "run", "entries")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    view = json.loads(ran.stdout)
    assert view["status"] == "succeeded" and view["records_loaded"] == 1425
    rows = warehouse_rows(data, "SELECT count(*), count(DISTINCT API), count(DISTINCT Category) FROM entries")
    assert rows == [(1425, 1425, 45)]
    first = warehouse_rows(data, "SELECT API, HTTPS FROM entries ORDER BY Category, API LIMIT 1")[0]
    assert isinstance(first[1], bool)


def test_peak_incremental_example_three_runs(tmp_path, demo_api):
    data = tmp_path / "data"
    cli(data, "feeds", "create", "getdata", "--script", script_file(tmp_path, "incremental_get_data.py", demo_api.url))
    for expected in (1000, 1000, 500):
        ran = cli(data, "--json", "run", "getdata")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert json.loads(ran.stdout)["records_loaded"] == expected
    assert warehouse_rows(data, "SELECT count(*), count(DISTINCT id) FROM getdata") == [(2500, 2500)]
    history = json.loads(cli(data, "--json", "state", "getdata", "--history").stdout)
    assert [h["state"] for h in history] == [{"next": 1001}, {"next": 2001}, {"next": None}]
    runs = json.loads(cli(data, "--json", "runs", "--feed", "getdata").stdout)
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    log = cli(data, "logs", runs[0]["id"])
    assert "500 rows committed" in log.stdout


def test_exit_codes_and_messages(tmp_path):
    data = tmp_path / "data"
    bad = cli(data, "feeds", "create", "9orders_", "--script", "print(1)")
    assert bad.returncode == 2
    assert "feed name: must start with a letter" in bad.stderr
    assert "feed name: must not end with an underscore" in bad.stderr
    missing = cli(data, "run", "nope")
    assert missing.returncode == 3 and "feed 'nope' does not exist" in missing.stderr
    cli(data, "feeds", "create", "broken", "--script", "raise SystemExit(3)")
    failed = cli(data, "--json", "run", "broken")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["error"] == "the script exited with status 3"
    tested = cli(data, "--json", "test", "broken")
    assert tested.returncode == 1 and json.loads(tested.stdout)["status"] == "failed"
    error = cli(data, "--json", "feeds", "create", "ok", "--script", "x", "--load-type", "upsert")
    assert error.returncode == 2
    assert json.loads(error.stdout)["problems"] == [["primary key", "is required for Upsert: name one or more fields"]]


def test_connections_secrets_and_export_import(tmp_path):
    data = tmp_path / "data"
    made = cli(data, "connections", "create", "billing", "--auth", "basic", "--username", "ann", "--password-stdin",
               stdin="pa55-Secret-word\n")
    assert made.returncode == 0, made.stderr
    shown = json.loads(cli(data, "--json", "connections", "show", "billing").stdout)
    assert shown["password"] == "****" and shown["username"] == "ann"
    renamed = cli(data, "connections", "edit", "billing", "--auth", "none")
    assert renamed.returncode == 2 and "authentication type: cannot be changed" in renamed.stderr

    cli(data, "feeds", "create", "orders", "--script", "print(1)", "--connection", "billing", "--tag", "sales")
    in_use = cli(data, "connections", "delete", "billing")
    assert in_use.returncode == 4 and "used by feeds: orders" in in_use.stderr

    exported = cli(data, "feeds", "export", "-o", str(tmp_path / "feeds.yaml"))
    assert exported.returncode == 0
    text = (tmp_path / "feeds.yaml").read_text()
    assert "pa55-Secret-word" not in text and yaml.safe_load(text)["feeds"][0]["connection"] == "billing"
    other = tmp_path / "other"
    cli(other, "connections", "create", "billing", "--auth", "none")
    imported = cli(other, "--json", "feeds", "import", str(tmp_path / "feeds.yaml"))
    assert json.loads(imported.stdout) == {"imported": ["orders"]}
    assert json.loads(cli(other, "--json", "feeds", "show", "orders").stdout)["tags"] == ["sales"]


def test_a_feed_s_schema_policy_is_set_and_changed_from_the_command_line(tmp_path):
    data = tmp_path / "data"
    created = cli(data, "feeds", "create", "prices", "--script", "print(1)", "--schema-policy", "freeze")
    assert created.returncode == 0, created.stderr
    assert json.loads(cli(data, "--json", "feeds", "show", "prices").stdout)["schema_policy"] == "freeze"
    cli(data, "feeds", "edit", "prices", "--schema-policy", "discard_new_columns")
    assert json.loads(cli(data, "--json", "feeds", "show", "prices").stdout)["schema_policy"] == "discard_new_columns"
    wrong = cli(data, "feeds", "edit", "prices", "--schema-policy", "sometimes")
    assert wrong.returncode != 0 and "evolve" in wrong.stderr
    history = cli(data, "--json", "schema", "prices")
    assert json.loads(history.stdout) == {"schema_policy": "discard_new_columns", "history": []}
    assert "schema policy: discard_new_columns" in cli(data, "schema", "prices").stdout


def test_the_schema_command_lists_the_changes_newest_first(tmp_path):
    data = tmp_path / "data"
    script = tmp_path / "prices.py"
    script.write_text("from lib import outputStream, metadata\nstep = metadata.get('step', 0)\n"
                      "outputStream.write({'id': step, **({'tag': 'new'} if step else {})})\n"
                      "metadata.save({'step': step + 1})\n")
    cli(data, "feeds", "create", "prices", "--script", f"@{script}")
    for _ in range(2):
        assert cli(data, "run", "prices").returncode == 0
    shown = cli(data, "schema", "prices").stdout
    assert "column tag added (VARCHAR)" in shown
    assert shown.index("column tag added") < shown.index("table created")
