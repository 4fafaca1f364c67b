"""Stage 4: an email watcher when no SMTP server is set says it will not be sent, and where
email is set up."""

from app_pages.view_models import feed_editor
from tests.ui.conftest import button, labelled, texts

SCRIPT = "from lib import outputStream\noutputStream.write({'id': 1})\n"
NOT_SET_UP = "Email is not set up"


def at_trigger_stage(app):
    draft = feed_editor.new_draft("local")
    draft.script, draft.feed_name, draft.stage = SCRIPT, "orders", 3
    draft.last_test = {"ok": True, "fingerprint": feed_editor.fingerprint(draft), "records": [], "logs": []}
    feed_editor.persist(draft)
    return app("new", draft=draft.id)


def add_email_watcher(at):
    labelled(at.multiselect, "Events").set_value(["failed"]).run()
    labelled(at.radio, "Channel").set_value("email").run()
    labelled(at.text_input, "Email address").set_value("ops@example.com").run()
    return button(at, "Add watcher").click().run()


def test_an_email_watcher_without_smtp_warns_and_says_where_to_set_it_up(app, monkeypatch):
    monkeypatch.delenv("TRIBUTARY_SMTP_HOST", raising=False)
    at = add_email_watcher(at_trigger_stage(app))
    assert "Email ops@example.com when: run failed" in texts(at)
    [warning] = [w.value for w in at.warning if NOT_SET_UP in w.value]
    assert "email watchers will not be sent" in warning
    assert "TRIBUTARY_SMTP_HOST" in warning and "Settings → Notifications" in warning


def test_with_smtp_set_there_is_no_warning(app, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_SMTP_HOST", "mail.example.com")
    at = add_email_watcher(at_trigger_stage(app))
    assert "Email ops@example.com when: run failed" in texts(at)
    assert NOT_SET_UP not in texts(at)


def test_a_webhook_watcher_needs_no_smtp(app, monkeypatch):
    monkeypatch.delenv("TRIBUTARY_SMTP_HOST", raising=False)
    at = at_trigger_stage(app)
    labelled(at.multiselect, "Events").set_value(["failed"]).run()
    labelled(at.radio, "Channel").set_value("webhook").run()
    labelled(at.text_input, "Webhook URL").set_value("https://example.com/hook").run()
    button(at, "Add watcher").click().run()
    assert "Webhook https://example.com/hook" in texts(at) or "example.com/hook" in texts(at)
    assert not [w for w in at.warning if NOT_SET_UP in w.value]
