"""The command line's input and output, each command in a process of its own: --json in any
position, bad input as exit 2 with a message naming the option (never a traceback), a reader
that goes away, and hash-password."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common.passwords import verify_password
from tests.test_cli import cli, cli_env

STATUSES = "'queued', 'running', 'loading', 'succeeded', 'failed', 'cancelled'"


def refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert f"error: {message}" in result.stderr.splitlines(), result.stderr


def test_json_is_taken_before_the_command_after_it_or_after_its_group(tmp_path):
    data = tmp_path / "data"
    assert cli(data, "feeds", "create", "orders", "--script", "print(1)", "--tag", "sales").returncode == 0
    views = [json.loads(cli(data, *args).stdout) for args in (
        ("--json", "feeds", "list"), ("feeds", "list", "--json"), ("feeds", "--json", "list"))]
    assert views[0] == views[1] == views[2]
    assert [v["name"] for v in views[0]] == ["orders"]
    shown = cli(data, "feeds", "show", "orders", "--json")
    assert json.loads(shown.stdout)["tags"] == ["sales"]
    error = cli(data, "run", "nope", "--json")
    assert error.returncode == 3 and json.loads(error.stdout)["error"] == "feed 'nope' does not exist"


@pytest.mark.parametrize("args, message", [
    (("feeds", "create", "orders", "--script", "@missing.py"), "--script: 'missing.py' does not exist"),
    (("test", "--script", "@missing.py"), "--script: 'missing.py' does not exist"),
    (("run", "orders", "--payload", "{not json"),
     "--payload: is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (("run", "orders", "--payload", "[1, 2]"), "--payload: must be a JSON object, not an array"),
    (("run", "orders", "--payload", "@missing.json"), "--payload: 'missing.json' does not exist"),
    (("state", "orders", "--reset", "{oops"),
     "--reset: is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (("state", "orders", "--reset", '"x"'), "--reset: must be a JSON object, not a string"),
    (("feeds", "import", "missing.yaml"), "file: 'missing.yaml' does not exist"),
    (("runs", "--status", "bogus"), f"--status: 'bogus' is not one of {STATUSES}"),
    (("runs", "--limit", "many"), "--limit: 'many' is not a valid integer"),
    (("connections", "create", "billing", "--auth", "none", "--username", "ann"),
     "--username: does not apply to No Auth; it is for Basic Auth"),
    (("connections", "create", "billing", "--auth", "basic", "--username", "ann", "--password", "pw",
      "--auth-url", "https://auth.example.com"), "--auth-url: does not apply to Basic Auth; it is for Custom Auth"),
    (("connections", "create", "billing", "--auth", "custom", "--auth-url", "https://auth.example.com",
      "--username", "ann"), "--username: does not apply to Custom Auth; it is for Basic Auth"),
    (("connections", "create", "billing", "--auth", "sideways"),
     "--auth: 'sideways' is not one of 'none', 'basic', 'custom'"),
])
def test_bad_input_is_exit_2_naming_the_option(tmp_path, args, message):
    refused(cli(tmp_path / "data", *args), message)


def test_bad_input_with_json_is_a_json_document_of_its_problems(tmp_path):
    data = tmp_path / "data"
    payload = cli(data, "--json", "run", "orders", "--payload", "[1]")
    assert payload.returncode == 2 and "Traceback" not in payload.stderr
    assert json.loads(payload.stdout)["problems"] == [["--payload", "must be a JSON object, not an array"]]
    status = cli(data, "runs", "--status", "bogus", "--json")
    assert status.returncode == 2
    assert json.loads(status.stdout)["problems"] == [["--status", f"'bogus' is not one of {STATUSES}"]]


def test_options_that_do_not_fit_the_auth_type_are_refused_and_nothing_is_saved(tmp_path):
    data = tmp_path / "data"
    both = cli(data, "connections", "create", "billing", "--auth", "none", "--username", "ann",
               "--header", "X-Key=1")
    refused(both, "--username: does not apply to No Auth; it is for Basic Auth; "
                  "--header: does not apply to No Auth; it is for Custom Auth")
    assert json.loads(cli(data, "--json", "connections", "list").stdout) == []

    made = cli(data, "connections", "create", "billing", "--auth", "basic", "--username", "ann", "--password-stdin",
               stdin="pa55-Secret-word\n")
    assert made.returncode == 0, made.stderr
    # An edit is checked against the stored type.
    refused(cli(data, "connections", "edit", "billing", "--token-path", "token"),
            "--token-path: does not apply to Basic Auth; it is for Custom Auth")
    shown = json.loads(cli(data, "--json", "connections", "show", "billing").stdout)
    assert "token_path" not in shown and shown["username"] == "ann"
    edited = cli(data, "connections", "edit", "billing", "--username", "bob")
    assert edited.returncode == 0, edited.stderr
    assert json.loads(cli(data, "--json", "connections", "show", "billing").stdout)["username"] == "bob"


@pytest.mark.parametrize("args", [("runs",), ("--json", "feeds", "list"), ("feeds", "export")])
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path, args):
    """A real pipe whose read end is closed before the command writes (as `| head -1` does
    once it has its line): no traceback, and the exit status a shell gives SIGPIPE."""
    data = tmp_path / "data"
    for name in ("orders", "customers"):
        assert cli(data, "feeds", "create", name, "--script", "print(1)").returncode == 0
    child = subprocess.Popen([sys.executable, "-m", "core.cli", *args], cwd=tmp_path, env=cli_env(data),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert stderr == ""


def test_a_shell_pipeline_into_head_ends_quietly(tmp_path):
    """`feeds export | head -1` with more YAML than a pipe holds: head leaves after one line."""
    data = tmp_path / "data"
    big = "x = 1\n" * 20_000
    for name in ("orders", "customers"):
        assert cli(data, "feeds", "create", name, "--script", big).returncode == 0
    piped = subprocess.run(f"'{sys.executable}' -m core.cli feeds export | head -1; echo \"status ${{PIPESTATUS[0]}}\"",
                           shell=True, executable="/bin/bash", cwd=tmp_path, env=cli_env(data),
                           capture_output=True, text=True, timeout=60)
    assert piped.stdout.splitlines() == ["version: 1", "status 141"]
    assert piped.stderr == ""


def test_hash_password_prints_a_hash_the_access_gate_accepts(tmp_path):
    data = tmp_path / "data"
    made = cli(data, "hash-password", stdin="correct horse\n")
    assert made.returncode == 0, made.stderr
    encoded = made.stdout.strip()
    assert encoded.startswith("scrypt$") and verify_password("correct horse", encoded)
    assert not verify_password("wrong horse", encoded)
    as_json = json.loads(cli(data, "--json", "hash-password", stdin="correct horse\n").stdout)
    assert verify_password("correct horse", as_json["hash"]) and as_json["hash"] != encoded  # salted
    refused(cli(data, "hash-password", stdin="\n"), "password: must not be empty")
