"""Rules on bad input that used to slip through: each gives a message naming the field and the
rule, never a traceback."""

import pytest

from common.errors import Conflict, ValidationError
from core.feeds import FeedSpec, create_feed, edit_feed, import_yaml
from core.validation import feed_name_problems, limit_problems, load_type_problems

SCRIPT = "from lib import outputStream\noutputStream.write({'n': 1})\n"


def test_feed_names_are_unique_regardless_of_case(tributary):
    create_feed(FeedSpec(name="Orders", script=SCRIPT))
    with pytest.raises(Conflict, match="feed name: 'orders' is already taken \\(as 'Orders'"):
        create_feed(FeedSpec(name="orders", script=SCRIPT))
    with pytest.raises(ValidationError, match="'ORDERS' differs only in case from the existing feed 'Orders'"):
        import_yaml("feeds:\n- {name: ORDERS, script: x}\n", replace=True)
    with pytest.raises(ValidationError, match="'b' is listed twice"):
        import_yaml("feeds:\n- {name: B, script: x}\n- {name: b, script: x}\n")


@pytest.mark.parametrize("name, message", [
    ("orders__rejected", "must not end with '__rejected'"),
    ("Orders__REJECTED", "must not end with '__rejected'"),
])
def test_reserved_names(name, message):
    assert any(message in m for _, m in feed_name_problems(name))


def test_tributary_columns_cannot_be_a_primary_key():
    [(field, message)] = load_type_problems("upsert", ["_tributary_run_id"])
    assert field == "primary key" and "'_tributary'" in message


def test_a_dependencies_string_in_yaml_is_an_error_not_one_letter_packages(tributary):
    with pytest.raises(ValidationError) as caught:
        import_yaml("feeds:\n- name: orders\n  script: x\n  dependencies: requests\n")
    assert str(caught.value) == ("feed #1 (orders) dependencies: must be a list of package specifiers, "
                                 "e.g. [requests, pandas>=2], not a string ('requests')")


@pytest.mark.parametrize("yaml_fields, message", [
    ("timeout_s: '600'", "feed #1 (orders) timeout: must be a whole number, not a string ('600')"),
    ("retries: [1]", "feed #1 (orders) retries: must be a whole number, not list ([1])"),
    ("tags: [1, 2]", "feed #1 (orders) tags: must be a list of text values: item 1 is int (1)"),
    ("trigger: webhook", "feed #1 (orders) trigger: must be a mapping, not a string ('webhook')"),
    ("network: 'no'", "feed #1 (orders) network: must be true or false, not a string ('no')"),
])
def test_wrong_types_in_yaml_name_the_field(tributary, yaml_fields, message):
    with pytest.raises(ValidationError) as caught:
        import_yaml(f"feeds:\n- name: orders\n  script: x\n  {yaml_fields}\n")
    assert str(caught.value) == message


@pytest.mark.parametrize("timeout, memory, messages", [
    (1, 64, []), (86400, 65536, []), (None, None, []),
    (0, None, ["timeout: must be between 1 and 86400 seconds (got 0)"]),
    (86401, None, ["timeout: must be between 1 and 86400 seconds (got 86401)"]),
    (None, 63, ["memory limit: must be between 64 and 65536 MB (got 63)"]),
    (None, 65537, ["memory limit: must be between 64 and 65536 MB (got 65537)"]),
    (1.5, None, ["timeout: must be a whole number of seconds between 1 and 86400 (got 1.5)"]),
])
def test_timeouts_and_memory_limits_have_ranges(timeout, memory, messages):
    assert [f"{f}: {m}" for f, m in limit_problems(timeout, memory)] == messages


def test_a_feed_edit_outside_the_ranges_is_refused(tributary):
    create_feed(FeedSpec(name="orders", script=SCRIPT))
    with pytest.raises(ValidationError, match="timeout: must be between 1 and 86400 seconds"):
        edit_feed("orders", timeout_s=100_000)
    with pytest.raises(ValidationError, match="memory limit: must be between 64 and 65536 MB"):
        edit_feed("orders", memory_limit_mb=10)
