import sqlalchemy as sa
import pytest

from core import connections as svc
from core.connections import ConnectionInput
from common.errors import Conflict, NotFound, ValidationError
from core.feeds import FeedSpec, create_feed
from storage.db import get_engine

PASSWORD = "s3cret-Pa55word-xyz"


def test_create_list_edit_delete(any_store):
    svc.create_connection("public", "none")
    svc.create_connection("billing", "basic", ConnectionInput(username="ann", password=PASSWORD))
    assert [c.name for c in svc.list_connections()] == ["billing", "public"]

    svc.edit_connection("billing", ConnectionInput(username="bob"))
    view = svc.masked_view(svc.get_connection("billing"))
    assert view["username"] == "bob"
    assert view["password"] == "****"  # kept, and never shown back

    svc.delete_connection("public")
    assert [c.name for c in svc.list_connections()] == ["billing"]
    with pytest.raises(NotFound):
        svc.get_connection("public")


def test_names_are_unique_and_validated(any_store):
    svc.create_connection("api", "none")
    with pytest.raises(Conflict, match="already taken"):
        svc.create_connection("api", "none")
    with pytest.raises(ValidationError, match="only letters, digits and underscores"):
        svc.create_connection("my-api", "none")
    with pytest.raises(ValidationError, match="authentication type: must be one of"):
        svc.create_connection("api2", "oauth")


def test_name_and_auth_type_cannot_change(any_store):
    svc.create_connection("api", "basic", ConnectionInput(username="u", password="p4ss"))
    with pytest.raises(ValidationError, match="connection name: cannot be changed"):
        svc.edit_connection("api", ConnectionInput(), new_name="api2")
    with pytest.raises(ValidationError, match="authentication type: cannot be changed"):
        svc.edit_connection("api", ConnectionInput(), new_auth_type="none")


def test_auth_parameters_are_required_per_type(any_store):
    with pytest.raises(ValidationError) as info:
        svc.create_connection("api", "basic", ConnectionInput(username=""))
    assert [f for f, _ in info.value.problems] == ["username", "password"]
    with pytest.raises(ValidationError, match="authorization URL: is required"):
        svc.create_connection("tok", "custom", ConnectionInput(auth_url="ftp://x"))
    with pytest.raises(ValidationError, match="JSON body: is not valid JSON"):
        svc.create_connection("tok", "custom", ConnectionInput(auth_url="http://x", body="{nope"))


def test_custom_auth_defaults(any_store):
    svc.create_connection("tok", "custom", ConnectionInput(auth_url="http://auth.example/token",
                                                           headers={"X-Key": "k-123"}, body='{"id": "me"}'))
    view = svc.masked_view(svc.get_connection("tok"))
    assert view["token_path"] == "access_token"
    assert view["token_header"] == "Authorization: Bearer <token>"
    assert view["headers"] == {"X-Key": "****"}
    assert view["body"] == "****"


def test_deleting_a_connection_in_use_names_the_feeds(any_store):
    svc.create_connection("api", "none")
    create_feed(FeedSpec(name="orders", script="print(1)", connection="api"))
    create_feed(FeedSpec(name="customers", script="print(1)", connection="api"))
    with pytest.raises(Conflict, match="used by feeds: customers, orders"):
        svc.delete_connection("api")


def test_secrets_are_encrypted_at_rest(any_store):
    svc.create_connection("api", "basic", ConnectionInput(username="ann", password=PASSWORD))
    svc.create_connection("tok", "custom", ConnectionInput(auth_url="http://a/t", headers={"X-Api-Key": "hdr-secret-777"},
                                                           body={"client_secret": "body-secret-888"}))
    with get_engine().connect() as con:
        dump = repr(con.execute(sa.text("SELECT * FROM connections")).fetchall())
    for secret in (PASSWORD, "hdr-secret-777", "body-secret-888"):
        assert secret not in dump
    assert "ann" in dump  # the username is not a secret: the check above is meaningful
    db_file = any_store / "tributary.db"
    if db_file.exists():  # SQLite: the bytes on disk, WAL included
        for path in any_store.glob("tributary.db*"):
            assert PASSWORD.encode() not in path.read_bytes()


def test_key_file_is_private(tributary):
    svc.create_connection("api", "basic", ConnectionInput(username="ann", password=PASSWORD))
    key = tributary / "secret.key"
    assert key.exists()
    assert key.stat().st_mode & 0o777 == 0o600
