"""Wording and consistency: a dependency pip cannot read is named with the rule it breaks (not
the packaging library's parser message); connection names take underscores as feed names do;
the Feeds records column says whose count it is; long log lines wrap."""

from core.bootstrap import start_run
from core.connections import get_connection
from core.feeds import FeedSpec, create_feed
from tests.ui.conftest import errors, labelled, texts
from tests.ui.test_connections import new_connection
from tests.ui.test_feed_editor import at_stage_2

LONG = "print('x' * 400)\n"


def test_a_bad_dependency_is_named_with_the_rule_in_plain_words(app):
    at = at_stage_2(app)
    labelled(at.multiselect, "Install Dependency").set_value(["requests>="]).run()
    page = texts(at)
    assert ("'requests>=' is not a package pip can install: write a package name, optionally with a version, "
            "e.g. requests or requests>=2.31 or pandas==2.2.*") in page
    assert "Expected" not in page and "end of input" not in page  # nothing of the parser's own message


def test_a_connection_name_may_contain_underscores(app):
    at = new_connection(app("connections"), "sales_api", "none")
    assert not errors(at)
    assert get_connection("sales_api").name == "sales_api"


def test_a_connection_name_with_a_dash_is_refused_naming_the_rule(app):
    at = new_connection(app("connections"), "sales-api", "none")
    assert "Connection name may contain only letters, digits and underscores (A-Z, a-z, 0-9, _)" in errors(at)


def test_long_log_lines_wrap(app):
    create_feed(FeedSpec(name="chatty", script=LONG))
    run = start_run("chatty", wait=True)
    at = app("runs", run=run.id)
    [log] = [c for c in at.code if "xxxx" in c.value]
    assert log.proto.wrap_lines
