import pytest
import yaml

from core import feeds as svc
from core.connections import ConnectionInput, create_connection
from common.errors import Conflict, NotFound, ValidationError
from core.feeds import FeedSpec

SCRIPT = "from lib import outputStream\noutputStream.write({'a': 1})\n"


def test_create_list_edit_delete(any_store):
    create_connection("api", "none")
    feed = svc.create_feed(FeedSpec(name="orders", script=SCRIPT, connection="api", dependencies=["six>=1.16"]))
    assert feed.load_type == "incremental"
    assert feed.destinations == ["duckdb"]  # the embedded warehouse is the default
    assert feed.trigger == {"type": "manual"}
    assert [f.name for f in svc.list_feeds()] == ["orders"]

    svc.edit_feed("orders", load_type="upsert", primary_key=["id"], tags=["sales"])
    spec = svc.spec_of(svc.get_feed("orders"))
    assert (spec.load_type, spec.primary_key, spec.tags, spec.connection) == ("upsert", ["id"], ["sales"], "api")
    assert spec.script == SCRIPT

    svc.delete_feed("orders")
    with pytest.raises(NotFound):
        svc.get_feed("orders")


def test_every_broken_rule_is_reported_with_its_field(any_store):
    with pytest.raises(ValidationError) as info:
        svc.create_feed(FeedSpec(name="9bad_", script=" ", dependencies=["pandas==="], load_type="upsert"))
    fields = [field for field, _ in info.value.problems]
    assert fields.count("feed name") == 2
    assert {"script", "dependencies", "primary key"} <= set(fields)


def test_name_unique_and_not_renamable(any_store):
    svc.create_feed(FeedSpec(name="orders", script=SCRIPT))
    with pytest.raises(Conflict, match="already taken"):
        svc.create_feed(FeedSpec(name="orders", script=SCRIPT))
    with pytest.raises(ValidationError, match="cannot be changed"):
        svc.edit_feed("orders", name="orders2")


def test_unknown_connection_and_destination_are_refused(any_store):
    with pytest.raises(ValidationError, match="connection: 'nope' does not exist"):
        svc.create_feed(FeedSpec(name="orders", script=SCRIPT, connection="nope"))
    with pytest.raises(ValidationError, match="not offered by this warehouse"):
        svc.create_feed(FeedSpec(name="orders", script=SCRIPT, destinations=["bigquery"]))


def test_a_bad_edit_changes_nothing(any_store):
    svc.create_feed(FeedSpec(name="orders", script=SCRIPT))
    with pytest.raises(ValidationError):
        svc.edit_feed("orders", script="print(2)", load_type="upsert")  # no primary key
    assert svc.get_feed("orders").script == SCRIPT


def test_export_and_import_yaml_without_secrets(any_store):
    create_connection("api", "basic", ConnectionInput(username="ann", password="hunter2-secret"))
    svc.create_feed(FeedSpec(name="orders", script=SCRIPT, connection="api", tags=["x"]))
    text = svc.export_yaml()
    assert "hunter2-secret" not in text
    doc = yaml.safe_load(text)
    assert doc["feeds"][0]["name"] == "orders" and doc["feeds"][0]["connection"] == "api"

    with pytest.raises(Conflict, match="already exist"):
        svc.import_yaml(text)
    svc.delete_feed("orders")
    assert svc.import_yaml(text) == ["orders"]
    assert svc.get_feed("orders").script == SCRIPT
    doc["feeds"][0]["script"] = "print('new')"
    svc.import_yaml(yaml.safe_dump(doc), replace=True)
    assert svc.get_feed("orders").script == "print('new')"


def test_import_is_all_or_nothing(any_store):
    doc = {"feeds": [{"name": "good", "script": SCRIPT}, {"name": "bad_", "script": SCRIPT}]}
    with pytest.raises(ValidationError, match="must not end with an underscore"):
        svc.import_yaml(yaml.safe_dump(doc))
    assert svc.list_feeds() == []
