import pytest

from common.errors import ValidationError
from core.validation import (
    connection_name_problems,
    dependency_problems,
    feed_name_problems,
    load_type_problems,
)


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "feed name: is required"),
        ("orders-2024", "feed name: may contain only letters, digits and underscores"),
        ("orders 2024", "feed name: may contain only letters, digits and underscores"),
        ("2024_orders", "feed name: must start with a letter"),
        ("_orders", "feed name: must start with a letter"),
        ("orders_", "feed name: must not end with an underscore"),
        ("a" * 51, "feed name: must be at most 50 characters (got 51)"),
    ],
)
def test_each_feed_name_rule_has_its_own_message(name, message):
    messages = [f"{field}: {text}" for field, text in feed_name_problems(name)]
    assert message in messages


def test_a_name_breaking_several_rules_gets_every_message():
    messages = [text for _, text in feed_name_problems("1bad-name_")]
    assert len(messages) == 3
    assert any("start with a letter" in m for m in messages)
    assert any("underscores" in m for m in messages)
    assert any("end with an underscore" in m for m in messages)


@pytest.mark.parametrize("name", ["orders", "Orders_2024", "a", "a_b_c", "x" * 50])
def test_valid_feed_names(name):
    assert feed_name_problems(name) == []


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "connection name: is required (1-50 letters, digits and underscores)"),
        ("my-api", "connection name: may contain only letters, digits and underscores (A-Z, a-z, 0-9, _)"),
        ("my api", "connection name: may contain only letters, digits and underscores (A-Z, a-z, 0-9, _)"),
        ("c" * 51, "connection name: must be at most 50 characters (got 51)"),
    ],
)
def test_each_connection_name_rule_has_its_own_message(name, message):
    assert message in [f"{f}: {t}" for f, t in connection_name_problems(name)]


@pytest.mark.parametrize("name", ["GitHub", "api2", "X", "sales_api"])
def test_valid_connection_names(name):
    assert connection_name_problems(name) == []


def test_dependencies_are_requirement_specifiers():
    assert dependency_problems(["requests>=2", "pandas==2.2.*", "python-dateutil", "six; python_version>'3'"]) == []
    problems = dependency_problems(["pandas===", "-i http://evil", "  "])
    assert len(problems) == 3
    assert "is not a package pip can install" in problems[0][1]
    assert "pip options are not allowed" in problems[1][1]


def test_upsert_needs_a_primary_key_and_only_upsert_takes_one():
    assert load_type_problems("upsert", []) == [("primary key", "is required for Upsert: name one or more fields")]
    assert load_type_problems("incremental", ["id"])[0][0] == "primary key"
    assert load_type_problems("upsert", ["id", "region"]) == []
    assert "must be one of" in load_type_problems("append", [])[0][1]


def test_validation_error_names_fields():
    error = ValidationError([("feed name", "must start with a letter"), ("script", "is empty")])
    assert str(error) == "feed name: must start with a letter; script: is empty"
