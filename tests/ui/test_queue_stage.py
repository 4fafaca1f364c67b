"""The Destination stage's queue, with the celery executor: a DuckDB feed says why it runs on
the app host's worker, and pinning it elsewhere is refused there; with the local executor the
queue is not shown."""

from tests.ui.conftest import button, labelled, texts
from tests.ui.test_feed_editor import at_stage_2, run_test


def at_destination(app, name="orders"):
    at = run_test(at_stage_2(app))
    labelled(at.text_input, "Feed Name").set_value(name).run()
    button(at, "Next").click().run()
    assert any(s.value == "Destination" for s in at.subheader)
    return at


def test_a_duckdb_feed_says_it_runs_on_the_app_hosts_worker_and_cannot_be_pinned(app, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_EXECUTOR", "celery")
    monkeypatch.setenv("TRIBUTARY_CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    at = at_destination(app)
    assert "DuckDB warehouse is a file on the app's host, and only the app host's worker has it" in texts(at)
    labelled(at.text_input, "Queue").set_value("big").run()
    assert "'big' cannot be chosen" in texts(at)
    assert button(at, "Next").disabled
    labelled(at.text_input, "Queue").set_value("").run()
    assert not button(at, "Next").disabled


def test_with_the_local_executor_there_is_no_queue_to_choose(app):
    at = at_destination(app)
    assert not [w for w in at.text_input if w.label == "Queue"]
