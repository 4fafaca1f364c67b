"""Stage 2's Test: what a result says matches what happened, and a running test can be stopped."""

import time

from app_pages.view_models.test_sessions import current_test
from tests.ui.conftest import current_draft, labelled, texts, type_script, wait_for_test

RECORDS_25 = (
    "from lib import outputStream, metadata\n"
    "for i in range(25):\n"
    "    outputStream.write({'id': i})\n"
    "metadata.save({'next': 25})\n"
)
SLOW = "import time\nfor i in range(120):\n    print(f'step {i}', flush=True)\n    time.sleep(0.25)\n"
CHANGED = "The script, its dependencies or the connection changed"


def clickable(at, *labels):
    [found] = [b for b in at.button if b.label in labels]
    return found


def at_stage_2(app):
    at = app("new")
    clickable(at, "Next").click().run()
    return at


def run_test(at, script):
    type_script(at, script)
    clickable(at, "Test").click().run()
    return wait_for_test(at, current_draft(at).id)


def test_a_failed_test_of_the_current_script_does_not_say_it_changed(app):
    at = run_test(at_stage_2(app), "raise ValueError('the API said no')\n")
    assert "Test failed: ValueError: the API said no" in "\n".join(e.value for e in at.error)
    assert CHANGED not in texts(at)
    type_script(at, "raise ValueError('something else')\n")
    assert CHANGED in texts(at)  # now it did change


def test_run_to_completion_is_off_and_the_result_says_the_script_was_stopped(app):
    at = at_stage_2(app)
    assert labelled(at.toggle, "Run to completion").value is False
    at = run_test(at, RECORDS_25)
    page = texts(at)
    assert "stopped after the first 10 records" in page
    assert "Test succeeded: 10 records" not in page
    labelled(at.toggle, "Run to completion").set_value(True).run()
    at = run_test(at, RECORDS_25)
    assert "Test succeeded: 25 records" in texts(at)


def test_a_running_test_can_be_stopped(app):
    at = at_stage_2(app)
    type_script(at, SLOW)
    clickable(at, "Test").click().run()
    session = current_test(current_draft(at).id)
    deadline = time.monotonic() + 20
    while "step 1" not in "\n".join(session.lines()) and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    assert "Testing…" in texts(at)
    clickable(at, "Stop").click().run()
    assert session.wait(15), "the script kept running after Stop"
    assert session.elapsed_s() < 25
    at.run()
    page = texts(at)
    assert "Test stopped" in page
    assert "Test failed" not in page
    assert "step 119" not in page


def test_a_feeds_test_on_the_feeds_page_can_be_stopped_too(app):
    from core.feeds import FeedSpec, create_feed

    create_feed(FeedSpec(name="slow", script=SLOW))
    at = app("feeds")
    at.button(key="feeds:test:slow").click().run()
    session = current_test("feeds-page-test")
    deadline = time.monotonic() + 20
    while "step 1" not in "\n".join(session.lines()) and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    clickable(at, "Stop").click().run()
    assert session.wait(15), "the script kept running after Stop"
    at.run()
    assert "Test stopped" in texts(at)
