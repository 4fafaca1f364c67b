"""The request inspector: scripts run by the real runner against the demo API over real HTTP,
and what the test's result says of their requests. Secrets never appear in it."""

from __future__ import annotations

import json
import os

from core.connections import ConnectionInput, create_connection
from core.preview import PreviewRequest, preview_script
from demo.api import DemoAPI
from runners.base import MAX_REQUESTS, ScriptOutcome, _read_requests, open_dir

CUSTOM_AUTH_SCRIPT = """\
from lib import connection, outputStream

page = 1
while page and page <= 2:
    body = connection.get("{url}/protected/data", params={{"page": page}}, timeout=10).json()
    for record in body["data"][:3]:
        outputStream.write(record)
    page = body["next_page"]
"""

PLAIN_REQUESTS_SCRIPT = """\
import requests
from lib import outputStream

answer = requests.get("{url}/entries", params={{"category": "Books", "api_key": "plain-key-4242"}}, timeout=10)
outputStream.write({{"count": answer.json()["count"]}})
requests.get("{url}/nowhere", timeout=10)
"""

FLAKY_SCRIPT = """\
from lib import connection, outputStream

connection.configure(retries=3, backoff=0.05)
answer = connection.get("{url}/flaky", params={{"key": "inspect-1", "fail": 2, "status": 503}}, timeout=10)
outputStream.write(answer.json())
"""

URLLIB3_SCRIPT = """\
import urllib3
from lib import outputStream

http = urllib3.PoolManager()
answer = http.request("GET", "{url}/health")
outputStream.write({{"status": answer.status}})
"""


def _custom_connection(api: DemoAPI) -> None:
    create_connection("demotoken", "custom", ConnectionInput(
        auth_url=api.url + "/auth/token", headers={"X-Client-Key": "header-secret-9876"},
        body={"client_id": api.client_id, "client_secret": api.client_secret},
    ))


def _everything(result) -> str:
    return json.dumps({"requests": result.requests, "counts": result.request_counts, "logs": result.logs})


def test_custom_auth_requests_are_recorded_with_the_token_call_marked_and_no_secret(tributary, demo_api):
    _custom_connection(demo_api)
    result = preview_script(PreviewRequest(script=CUSTOM_AUTH_SCRIPT.format(url=demo_api.url),
                                           connection="demotoken", run_to_completion=True))
    assert result.ok, (result.error, result.logs)
    kinds = [(r["kind"], r["method"], r["url"].split("?")[0].removeprefix(demo_api.url)) for r in result.requests]
    assert kinds == [("token", "POST", "/auth/token"), ("request", "GET", "/protected/data"),
                     ("request", "GET", "/protected/data")]
    token_call, first, second = result.requests
    assert token_call["status"] == 200 and token_call["body"] is None  # the token's answer is never kept
    assert "X-Client-Key" in token_call["request_headers"]
    assert first["url"] == demo_api.url + "/protected/data?page=1" and first["status"] == 200
    assert second["url"].endswith("page=2")
    assert "Authorization" in first["request_headers"]
    assert first["bytes"] > 0 and first["body"].startswith('{"data"') and first["duration_ms"] >= 0
    assert [r["n"] for r in result.requests] == [1, 2, 3]
    assert result.request_counts["requests"] == 3 and result.request_counts["token_calls"] == 1
    assert result.request_counts["bytes"] >= first["bytes"] + second["bytes"]
    text = _everything(result)
    for secret in (demo_api.client_secret, "header-secret-9876"):
        assert secret not in text
    assert not any(token in text for token in list(demo_api._tokens)), "the token leaked into the inspector"


def test_plain_requests_are_recorded_with_secret_query_values_masked(tributary, demo_api):
    result = preview_script(PreviewRequest(script=PLAIN_REQUESTS_SCRIPT.format(url=demo_api.url),
                                           run_to_completion=True))
    assert result.ok, (result.error, result.logs)
    entries, missing = result.requests
    assert entries["url"] == demo_api.url + "/entries?category=Books&api_key=****"
    assert entries["status"] == 200 and entries["kind"] == "request" and entries["retries"] == 0
    assert missing["status"] == 404 and missing["url"] == demo_api.url + "/nowhere"
    assert result.request_counts["errors"] == 1
    assert "plain-key-4242" not in _everything(result)


def test_a_known_secret_is_masked_in_the_url_and_the_body_excerpt(tributary, demo_api):
    create_connection("basic", "basic", ConnectionInput(username="demo", password="Books-and-more"))
    script = (
        "import requests\nfrom lib import outputStream\n"
        f"requests.get('{demo_api.url}/entries', params={{'title': 'Books-and-more'}}, timeout=10)\n"
        "outputStream.write({'a': 1})\n"
    )
    result = preview_script(PreviewRequest(script=script, connection="basic", run_to_completion=True))
    assert result.ok, (result.error, result.logs)
    assert result.requests[0]["url"] == demo_api.url + "/entries?title=****"
    assert "Books-and-more" not in _everything(result)


def test_retries_and_their_waits_are_recorded(tributary, demo_api):
    result = preview_script(PreviewRequest(script=FLAKY_SCRIPT.format(url=demo_api.url), run_to_completion=True))
    assert result.ok, (result.error, result.logs)
    (entry,) = result.requests
    assert entry["status"] == 200 and entry["attempts"] == 3 and entry["retries"] == 2
    assert len(entry["waits"]) == 2 and all("503" in why for _, why in entry["waits"])
    counts = result.request_counts
    assert counts["retries"] == 2 and counts["waits"] == 2 and counts["waited_s"] > 0


def test_plain_urllib3_is_recorded_too(tributary, demo_api):
    result = preview_script(PreviewRequest(script=URLLIB3_SCRIPT.format(url=demo_api.url), run_to_completion=True))
    assert result.ok, (result.error, result.logs)
    (entry,) = result.requests
    assert entry["url"] == demo_api.url + "/health" and entry["status"] == 200
    assert json.loads(entry["body"]) == {"status": "ok"}


def test_a_script_without_requests_has_none(tributary):
    result = preview_script(PreviewRequest(script="from lib import outputStream\noutputStream.write({'a': 1})\n"))
    assert result.ok, (result.error, result.logs)
    assert result.requests == [] and result.request_counts == {}


def test_the_sandbox_keeps_at_most_500_requests_and_counts_them_all(tributary):
    with DemoAPI() as api:
        script = ("import requests\nfrom lib import outputStream\ns = requests.Session()\n"
                  f"for _ in range(520):\n    s.get('{api.url}/health', timeout=10)\n"
                  "outputStream.write({'a': 1})\n")
        result = preview_script(PreviewRequest(script=script, run_to_completion=True))
    assert result.ok, (result.error, result.logs)
    assert len(result.requests) == MAX_REQUESTS
    assert result.request_counts["requests"] == 520 and result.request_counts["dropped"] == 20


def _outcome_from(tmp_path, content: bytes | None = None, link_to=None) -> ScriptOutcome:
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    if link_to is not None:
        os.symlink(link_to, out / "requests.jsonl")
    elif content is not None:
        (out / "requests.jsonl").write_bytes(content)
    outcome = ScriptOutcome(status="succeeded")
    fd = open_dir(out)
    try:
        _read_requests(fd, outcome, ["s3cr3t-value"])
    finally:
        os.close(fd)
    return outcome


def test_the_app_reads_the_file_defensively(tmp_path):
    garbage = b"\n".join([
        b"not json",
        json.dumps({"url": "http://x/?k=s3cr3t-value", "status": "200", "method": "GET", "kind": "evil",
                    "waits": [[1, "x"], "bad"], "request_headers": ["A"], "extra": "dropped"}).encode(),
        json.dumps({"summary": {"requests": 7, "bytes": "lots"}}).encode(),
    ])
    outcome = _outcome_from(tmp_path / "a", garbage)
    (entry,) = outcome.requests
    assert entry["url"] == "http://x/?k=****" and entry["status"] is None and entry["kind"] == "request"
    assert entry["waits"] == [[1, "x"]] and "extra" not in entry
    assert outcome.request_counts["requests"] == 7 and outcome.request_counts["bytes"] == 0


def test_a_symlinked_or_oversized_requests_file_is_ignored_and_never_fails_the_run(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text('{"url": "http://stolen"}\n')
    assert _outcome_from(tmp_path / "a", link_to=secret).requests == []
    big = (json.dumps({"url": "http://x/"}) + "\n").encode() * 200_000
    assert _outcome_from(tmp_path / "b", big).requests == []


def test_a_real_run_says_its_request_counts_in_its_log(tributary, demo_api):
    from core.bootstrap import execute_run
    from core.feeds import FeedSpec, create_feed
    from core.runs import create_run, read_log

    create_feed(FeedSpec(name="flaky", script=FLAKY_SCRIPT.format(url=demo_api.url).replace("inspect-1", "run-1")))
    run = execute_run(create_run("flaky").id)
    assert run.status == "succeeded", run.error
    text, _ = read_log(run.id)
    [line] = [line for line in text.splitlines() if "requests: " in line]
    assert "requests: 1 (2 retries, 2 waits for" in line and "0 errors" in line


def test_the_cli_test_json_returns_the_requests(tmp_path, demo_api):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update(TRIBUTARY_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(root))
    script = PLAIN_REQUESTS_SCRIPT.format(url=demo_api.url)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=tmp_path, env=env, input=script,
                              capture_output=True, text=True, timeout=300)

    tested = cli("--json", "test", "--script", "-", "--all")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    view = json.loads(tested.stdout)
    assert [r["url"] for r in view["requests"]] == [demo_api.url + "/entries?category=Books&api_key=****",
                                                  demo_api.url + "/nowhere"]
    assert view["request_counts"]["requests"] == 2 and view["schema"]["columns"][0]["field"] == "count"
    assert "plain-key-4242" not in tested.stdout
    text = cli("test", "--script", "-", "--all")
    assert "requests: 2 (retries 0" in text.stdout and f"GET {demo_api.url}/nowhere -> 404" in text.stdout


def test_urls_and_bodies_are_masked_before_they_are_written(lib):
    from lib import _inspect, _runtime

    assert _inspect.mask_url("https://ann:pw-123@api.example/v1?access_token=abc&page=2&client_secret=s") == (
        "https://ann:****@api.example/v1?access_token=****&page=2&client_secret=****")
    _runtime.add_secret("learnt-token-777")
    assert _inspect.mask_url("https://api.example/v1/learnt-token-777/x?q=learnt-token-777") == (
        "https://api.example/v1/****/x?q=****")
    body, cut = _inspect.excerpt(b'{"access_token": "zzz", "refresh_token": "yyy", "id": 1}', "application/json")
    assert body == '{"access_token": "****", "refresh_token": "****", "id": 1}' and cut is False
    body, cut = _inspect.excerpt(b"x" * 5000, "text/plain")
    assert len(body) == _inspect.BODY_BYTES and cut is True
    assert _inspect.excerpt(b"\x89PNG....", "image/png") == (None, False)


def test_a_test_that_times_out_still_shows_the_requests_made_before(tributary, demo_api):
    script = ("import time, requests\nfrom lib import outputStream\n"
              f"requests.get('{demo_api.url}/health', timeout=10)\n"
              f"requests.get('{demo_api.url}/entries', params={{'category': 'Books'}}, timeout=10)\n"
              "time.sleep(60)\n")
    result = preview_script(PreviewRequest(script=script, run_to_completion=True, timeout_s=3))
    assert not result.ok
    assert [r["url"].removeprefix(demo_api.url) for r in result.requests] == ["/health", "/entries?category=Books"]
    assert result.request_counts["requests"] == 2
