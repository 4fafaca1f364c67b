"""The Runner contract: what every sandbox (subprocess, docker) must do, end to end through
the core's test mode and runs."""

import threading
import time
from pathlib import Path

import pytest

from core.connections import ConnectionInput, create_connection
from core.feeds import FeedSpec, create_feed
from core.runs import cancel_run, create_run, wait_for_run
from core.preview import PreviewRequest, preview_script
from core.bootstrap import execute_run
from core.state import current_state
from tests.helpers import example, table_exists, warehouse_rows


def test_peak_example_previews_ten_records_and_stops(runner_name, demo_api):
    result = preview_script(PreviewRequest(script=example("public_apis_entries.py", demo_api.url)))
    assert result.ok, result.error
    assert result.count == 10 and len(result.records) == 10
    assert set(result.records[0]) == {"API", "Description", "Auth", "HTTPS", "Cors", "Link", "Category"}
    assert result.duration_s > 0


def test_test_can_run_to_completion_and_changes_nothing(runner_name, demo_api, tributary):
    create_feed(FeedSpec(name="entries", script=example("public_apis_entries.py", demo_api.url)))
    result = preview_script(PreviewRequest(script=example("public_apis_entries.py", demo_api.url), run_to_completion=True))
    assert result.ok and result.count == 1425 and len(result.records) == 10
    assert not table_exists(tributary, "entries")
    assert current_state("entries") == {}


def test_test_reports_the_metadata_that_would_be_saved(runner_name, demo_api):
    result = preview_script(PreviewRequest(script=example("incremental_get_data.py", demo_api.url), run_to_completion=True,
                                     metadata={"next": 2001}))
    assert result.ok
    assert result.count == 500
    assert result.records[0]["id"] == 2001
    assert result.metadata == {"next": None}


def test_error_reports_the_line_in_the_users_script(runner_name):
    script = "from lib import outputStream\noutputStream.write({'a': 1})\nvalue = {}['missing']\n"
    result = preview_script(PreviewRequest(script=script))
    assert not result.ok
    assert result.error_line == 3
    assert "KeyError" in result.error and "line 3" in result.error
    assert any("KeyError" in line for line in result.logs)  # the traceback is in the log


def test_syntax_error_names_the_line(runner_name):
    result = preview_script(PreviewRequest(script="x = 1\nif x\n    pass\n"))
    assert not result.ok and result.error_line == 2 and "SyntaxError" in result.error


@pytest.mark.parametrize(
    "script, expected",
    [
        ("from lib import outputStream\noutputStream.write([1, 2])", "record #1 is a list"),
        ("from lib import outputStream\noutputStream.write({'a': 1})\noutputStream.write('x')", "record #2 is a str"),
        ("from lib import metadata\nmetadata.save(['page', 2])", "metadata.save() takes a JSON object (dict), got a list"),
        ("from lib import outputStream\noutputStream.write({'a': object()})", "record #1 cannot be written as JSON"),
    ],
)
def test_records_and_metadata_must_be_objects(runner_name, script, expected):
    result = preview_script(PreviewRequest(script=script))
    assert not result.ok
    assert expected in result.error


def test_dates_decimals_and_uuids_become_strings(runner_name):
    script = (
        "import datetime, decimal, uuid\nfrom lib import outputStream\n"
        "outputStream.write({'d': datetime.date(2024, 5, 1), 'n': decimal.Decimal('1.10'),"
        " 'u': uuid.UUID(int=1), 't': datetime.datetime(2024, 5, 1, 12, 0)})\n"
    )
    result = preview_script(PreviewRequest(script=script))
    assert result.ok, result.error
    assert result.records == [{"d": "2024-05-01", "n": "1.10", "u": "00000000-0000-0000-0000-000000000001",
                               "t": "2024-05-01T12:00:00"}]


def test_keys_that_are_not_text_become_text_as_json_dumps_writes_them(runner_name):
    script = (
        "from lib import outputStream\n"
        "outputStream.write({'a': 1})\n"
        "outputStream.write({1: 'one', 'nested': {2.5: True, None: 'x'}})\n"
        "outputStream.write({'b': 2})\n"
    )
    result = preview_script(PreviewRequest(script=script))
    assert result.ok, result.error
    assert result.records == [{"a": 1}, {"1": "one", "nested": {"2.5": True, "null": "x"}}, {"b": 2}]


def test_connection_secrets_are_masked_in_logs_and_errors(runner_name):
    create_connection("api", "basic", ConnectionInput(username="ann", password="Sup3r-S3cret-Value"))
    script = (
        "from lib import connection\nprint('password is', connection.auth[1])\n"
        "raise RuntimeError('failed with ' + connection.auth[1])\n"
    )
    result = preview_script(PreviewRequest(script=script, connection="api"))
    joined = "\n".join(result.logs)
    assert "password is ****" in joined
    assert "Sup3r-S3cret-Value" not in joined
    assert result.error == "RuntimeError: failed with **** (script.py, line 3)"


def test_script_cannot_see_the_apps_environment(runner_name, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_SECRET_KEY", "app-only-encryption-key")
    monkeypatch.setenv("APP_ONLY_VARIABLE", "should-not-leak")
    script = "import os\nfrom lib import outputStream\noutputStream.write({'env': ' '.join(sorted(os.environ))})\n"
    result = preview_script(PreviewRequest(script=script))
    assert result.ok, result.error
    names = result.records[0]["env"].split()
    assert "PATH" in names
    assert "APP_ONLY_VARIABLE" not in names and "TRIBUTARY_SECRET_KEY" not in names
    assert "TRIBUTARY_DATABASE_URL" not in names and "TRIBUTARY_DATA_DIR" not in names


def test_logs_stream_while_the_script_runs(runner_name):
    seen = []
    script = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')\n"
    result = preview_script(PreviewRequest(script=script), on_log=lambda line: seen.append((time.monotonic(), line)))
    end = time.monotonic()
    assert result.ok
    first = next(t for t, line in seen if line == "first")
    assert end - first > 1.0  # "first" arrived while the script was still sleeping


def test_time_limit(runner_name):
    result = preview_script(PreviewRequest(script="import time\ntime.sleep(30)\n", timeout_s=2))
    assert not result.ok
    assert "timed out after 2 s" in result.error


def test_memory_limit(runner_name):
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 * 1024))\n"
    result = preview_script(PreviewRequest(script=script, memory_limit_mb=256, timeout_s=60))
    assert not result.ok
    assert "memory limit of 256 MB exceeded" in result.error


def test_cancel_leaves_table_and_state_as_they_were(runner_name, tributary):
    script = (
        "import time\nfrom lib import outputStream, metadata\nn = metadata.get('n', 0)\n"
        "for i in range(5):\n    outputStream.write({'id': n + i})\n"
        "metadata.save({'n': n + 5})\n"
        "if n >= 5:\n    print('waiting', flush=True)\n    time.sleep(60)\n"
    )
    create_feed(FeedSpec(name="slow", script=script))
    assert execute_run(create_run("slow").id).status == "succeeded"
    run = create_run("slow")
    thread = threading.Thread(target=execute_run, args=(run.id,))
    thread.start()
    deadline = time.monotonic() + 30
    while "waiting" not in (Path(run.log_path).read_text() if Path(run.log_path).exists() else ""):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancel_run(run.id)
    thread.join(30)
    finished = wait_for_run(run.id, timeout_s=10)
    assert finished.status == "cancelled"
    assert current_state("slow") == {"n": 5}
    assert warehouse_rows(tributary, "SELECT count(*) FROM slow") == [(5,)]


def test_trigger_payload_reaches_the_script(runner_name, tributary):
    script = "from lib import outputStream, trigger\noutputStream.write({'who': trigger.payload['who']})\n"
    create_feed(FeedSpec(name="hooked", script=script))
    run = execute_run(create_run("hooked", trigger="webhook", payload={"who": "ci"}).id)
    assert run.status == "succeeded", run.error
    assert warehouse_rows(tributary, "SELECT who FROM hooked") == [("ci",)]


def test_a_script_that_forks_reports_once(runner_name):
    script = (
        "import os\nfrom lib import outputStream\noutputStream.write({'a': 1})\n"
        "pid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\n"
    )
    result = preview_script(PreviewRequest(script=script, run_to_completion=True))
    assert result.ok, result.error
    assert result.count == 1 and result.records == [{"a": 1}]


def test_a_script_overwriting_its_result_file_fails_cleanly(runner_name):
    script = "import atexit\natexit.register(lambda: open('out/metadata.json', 'w').write('not json'))\n"
    result = preview_script(PreviewRequest(script=script))
    assert not result.ok
    assert "metadata is unreadable" in result.error


def test_a_large_runs_parts_are_taken_while_the_script_runs(runner_name, tributary):
    """Part 0 leaves the sandbox's spool (taken by the parent for staging) before the script
    ends; the script sees it go, and every record still lands once."""
    script = (
        "import os, time\nfrom lib import outputStream, _runtime\n"
        "for i in range(_runtime.RECORDS_PER_PART + 1):\n    outputStream.write({'id': i})\n"
        "part_0 = os.path.join('out', 'spool', 'part-00000.jsonl')\n"
        "deadline = time.monotonic() + 30\n"
        "while os.path.exists(part_0) and time.monotonic() < deadline:\n    time.sleep(0.02)\n"
        "print('taken while running:', not os.path.exists(part_0))\n"
        "outputStream.write({'id': -1})\n"
    )
    create_feed(FeedSpec(name="parts", script=script))
    run = execute_run(create_run("parts").id)
    assert run.status == "succeeded", run.error
    assert "taken while running: True" in Path(run.log_path).read_text()
    count = run.records_written
    assert warehouse_rows(tributary, "SELECT count(*), count(DISTINCT id) FROM parts") == [(count, count)]


def test_a_long_line_without_newline_is_cut_into_bounded_lines(runner_name):
    """A script printing megabytes with no newline costs the app one bounded line at a time."""
    from runners.base import MAX_LINE_BYTES

    script = "import sys\nsys.stdout.write('x' * (3 * 1024 * 1024))\nsys.stdout.flush()\nprint()\nprint('after')\n"
    result = preview_script(PreviewRequest(script=script, run_to_completion=True))
    assert result.ok, result.error
    assert max(len(line) for line in result.logs) <= MAX_LINE_BYTES
    kept = sum(len(line) for line in result.logs if set(line) == {"x"})
    assert 1024 * 1024 <= kept <= 2 * 1024 * 1024  # a test's output keeps its head and tail, 2 MB
    assert any(line.startswith("… ") and "of output cut" in line for line in result.logs)
    assert "after" in result.logs


def test_nan_and_infinity_in_a_record_are_refused_with_the_record_number(runner_name):
    """JSON cannot carry them; written as null they would load as NULLs no one asked for."""
    script = ("from lib import outputStream\n"
              "outputStream.write({'id': 1, 'price': None})\n"
              "outputStream.write({'id': 2, 'price': 2.5})\n"
              "outputStream.write({'id': 3, 'price': {'net': float('nan')}, 'note': None})\n")
    result = preview_script(PreviewRequest(script=script, run_to_completion=True))
    assert not result.ok
    assert "record #3: price.net is NaN or Infinity" in result.error, result.error
    infinite = "from lib import outputStream\noutputStream.write({'id': 1, 'ratio': [1.0, float('-inf')]})\n"
    result = preview_script(PreviewRequest(script=infinite, run_to_completion=True))
    assert not result.ok and "record #1: ratio.1 is NaN or Infinity" in result.error, result.error
