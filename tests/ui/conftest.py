"""Fixtures for the UI tests: the app under AppTest on an isolated Tributary, and helpers to
wait for the background work (tests and runs) that the pages start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.runs import FINAL_STATUSES, get_run, list_runs
from app_pages.view_models.test_sessions import current_test

ROOT = Path(__file__).resolve().parents[2]
UI_SCRIPT = ROOT / "ui.py"

PAGES = {
    "feeds": "app_pages/feeds.py",
    "new": "app_pages/new_feed.py",
    "edit": "app_pages/edit_feed.py",
    "connections": "app_pages/connections.py",
    "runs": "app_pages/runs.py",
    "data": "app_pages/data.py",
    "settings": "app_pages/settings.py",
}


def new_app(page: str | None = None, **query) -> AppTest:
    """A fresh browser session: nothing in its session state, only what is on disk."""
    at = AppTest.from_file(str(UI_SCRIPT), default_timeout=60)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(PAGES[page]).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def app(tributary):
    """Open the app on a page of an isolated Tributary: app("new")."""
    return new_app


def texts(at: AppTest) -> str:
    """Everything written on the page, for 'the user sees X' assertions."""
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "code", "title", "subheader",
                 "text", "json"):
        parts += [str(getattr(element, "value", "")) for element in getattr(at, kind)]
    for metric in at.metric:
        parts.append(f"{metric.label}: {metric.value}")
    return "\n".join(parts)


def errors(at: AppTest) -> list[str]:
    """The error messages as the user reads them (without Markdown's bold marks)."""
    return [e.value.replace("**", "") for e in at.error]


def wait_for_test(at: AppTest, owner_key: str, timeout_s: float = 60) -> AppTest:
    """Wait for the page's background script test to finish, then rerun the page."""
    session = current_test(owner_key)
    assert session is not None, "no test was started"
    assert session.wait(timeout_s), "the test did not finish in time"
    return at.run()


def wait_for_runs(feed: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = list_runs(feed)
        if runs and runs[0].status in FINAL_STATUSES:
            return get_run(runs[0].id)
        time.sleep(0.2)
    raise AssertionError(f"the run of {feed} did not finish in {timeout_s} s")


def button(at: AppTest, label: str):
    """The one button with this label on the page (fails if none or several)."""
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, f"{len(found)} buttons labelled {label!r}: {[b.label for b in at.button]}"
    return found[0]


def labelled(widgets, label: str):
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, f"{len(found)} widgets labelled {label!r}: {[w.label for w in widgets]}"
    return found[0]


def current_draft(at: AppTest):
    return at.session_state["editor:new-draft"]


def type_script(at: AppTest, script: str) -> AppTest:
    """What typing in the Ace editor does: the component reports the new text."""
    draft = current_draft(at)
    generation = at.session_state["editor:ace-generation"] if "editor:ace-generation" in at.session_state else 0
    at.session_state[f"{draft.id}:script:{generation}"] = script
    return at.run()


def landed_on(at: AppTest, page: str, title: str) -> AppTest:
    """After the app itself moved (st.switch_page), check where it landed and keep AppTest
    there: AppTest otherwise reruns the page it was last switched to."""
    assert [t.value for t in at.title] == [title], [t.value for t in at.title]
    return at.switch_page(PAGES[page])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets a fixture know whether its test failed (the browser tests keep a screenshot then).
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def ace_editors(at: AppTest) -> list[dict]:
    """What each Ace editor on the page was given: its text, language, error marks."""
    import json

    return [json.loads(e.proto.json_args) for e in at.get("component_instance")
            if e.proto.component_name == "streamlit_ace.streamlit_ace"]


def go_to_stage(at: AppTest, number: int) -> AppTest:
    """Click a stage in the stepper (1-4), as the user does to go back."""
    [step] = [b for b in at.button if b.label.startswith(f"{number}. ")]
    return step.click().run()
