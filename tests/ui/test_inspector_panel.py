"""Stage 2's Test shows the request inspector beside the logs (page by page, the token call
marked, secrets masked) and the detected schema under the preview."""

from __future__ import annotations

from app_pages.parts.test_panel import requests_page, schema_changes_caption
from core.connections import ConnectionInput, create_connection
from tests.ui.conftest import current_draft, texts, type_script, wait_for_test

MANY_REQUESTS = (
    "import requests\nfrom lib import outputStream\n"
    "for i in range(25):\n"
    "    requests.get('{url}/entries', params={{'title': str(i), 'token': 'tok-secret-555'}}, timeout=10)\n"
    "outputStream.write({{'id': 1, 'price': 2.5}})\n"
)
CUSTOM_AUTH = (
    "from lib import connection, outputStream\n"
    "body = connection.get('{url}/protected/data', timeout=10).json()\n"
    "outputStream.write(body['data'][0])\n"
)


def _button(at, label):
    [found] = [b for b in at.button if b.label == label]
    return found


def _tested(app, script: str, connection: str | None = None):
    at = app("new")
    if connection:
        [select] = [s for s in at.selectbox if s.label == "Select Connection"]
        select.set_value(connection).run()
    _button(at, "Next").click().run()
    type_script(at, script)
    _button(at, "Test").click().run()
    at = wait_for_test(at, current_draft(at).id)
    assert not at.exception, at.exception
    return at


def _request_frames(at):
    return [df.value for df in at.dataframe if "URL" in df.value.columns]


def test_the_requests_are_listed_page_by_page_with_secrets_masked(app, demo_api):
    at = _tested(app, MANY_REQUESTS.format(url=demo_api.url))
    assert [e.label for e in at.expander if e.label.startswith("Requests")] == ["Requests (25 requests)"]
    (frame,) = _request_frames(at)
    assert len(frame) == 20 and list(frame["#"]) == list(range(1, 21))
    assert frame["URL"][0] == f"{demo_api.url}/entries?title=0&token=****"
    [page] = [n for n in at.number_input if n.label.startswith("Page")]
    page.set_value(2).run()
    (frame,) = _request_frames(at)
    assert list(frame["#"]) == list(range(21, 26))
    everything = texts(at) + "".join(f.to_csv() for f in _request_frames(at)) + str([s.options for s in at.selectbox])
    assert "tok-secret-555" not in everything
    assert "Detected schema" in texts(at)


def test_the_token_call_of_custom_auth_is_marked_and_its_answer_not_shown(app, demo_api):
    create_connection("demotoken", "custom", ConnectionInput(
        auth_url=demo_api.url + "/auth/token",
        body={"client_id": demo_api.client_id, "client_secret": demo_api.client_secret}))
    at = _tested(app, CUSTOM_AUTH.format(url=demo_api.url), connection="demotoken")
    (frame,) = _request_frames(at)
    assert list(frame["Kind"]) == ["token call", ""]
    assert list(frame["Method"]) == ["POST", "GET"]
    [chooser] = [s for s in at.selectbox if s.label == "Request"]
    assert "token call" in chooser.options[0]
    assert "its answer is not kept" in texts(at)  # the first request, the token call, is shown
    chooser.set_value(2).run()
    assert '"data"' in texts(at)
    page = texts(at) + frame.to_csv()
    assert demo_api.client_secret not in page
    assert not any(token in page for token in list(demo_api._tokens))


def test_a_test_without_requests_shows_only_its_logs(app):
    at = _tested(app, "from lib import outputStream\noutputStream.write({'a': 1})\n")
    assert not [e for e in at.expander if e.label.startswith("Requests")]
    assert [e.label for e in at.expander if e.label.startswith("Logs")]


def test_paging_and_the_schema_caption():
    requests = [{"n": n} for n in range(1, 46)]
    assert [r["n"] for r in requests_page(requests, 3)] == [41, 42, 43, 44, 45]
    assert schema_changes_caption([{"status": "same"}]) == "A run with these records leaves the table's columns as they are."
    assert schema_changes_caption([{"status": "new"}, {"status": "widened"}, {"status": "rejected"},
                                   {"status": "rejected"}]) == "A run with these records: 1 added, 1 widened, 2 rejected."
