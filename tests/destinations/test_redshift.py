"""Redshift specifics: the COPY statement it sends, its staging in S3, its names and limits.
The SQL runs on PostgreSQL; only the COPY step is emulated (tests/destinations/redshift_emulation.py)."""

from __future__ import annotations

import re

import pytest

from storage.destinations.settings import RedshiftSettings, S3Settings
from storage.destinations.base import LoadError, RejectedRowsError
from storage.destinations.redshift import RedshiftDestination
from tests.destinations.harness import REDSHIFT_ROLE, make_target, request_for


@pytest.fixture
def redshift(request, tmp_path):
    return make_target("redshift", request, tmp_path)


def test_the_copy_statement_reads_the_staged_parquet_through_a_manifest_with_the_iam_role(redshift, spool_files):
    redshift.destination.load(request_for(spool_files([{"id": 1}, {"id": 2}, {"id": 3}]), "run-1"))
    [statement] = redshift.copier.statements
    bucket = redshift.make().s3_config.bucket
    assert re.fullmatch(
        rf"COPY \"_tributary_staging_[0-9a-f]{{8}}\" FROM 's3://{bucket}/staging/orders/run-1/[0-9a-f]{{8}}/manifest\.json' "
        rf"IAM_ROLE '{REDSHIFT_ROLE}' FORMAT AS PARQUET MANIFEST",
        statement.sql,
    ), statement.sql
    assert statement.redacted == statement.sql  # a role is no secret
    assert redshift.leftovers() == []  # staged files are removed once the load committed


def test_with_access_keys_the_secret_is_in_the_statement_but_not_in_its_redacted_form():
    destination = RedshiftDestination(
        config=RedshiftSettings(url="postgresql://unused", staging_prefix="staging"),
        s3_config=S3Settings(bucket="b", access_key_id="AKIAEXAMPLE", secret_access_key="s3cr'et"),
    )
    statement = destination.copy_statement("_tributary_staging", "s3://b/staging/m.json")
    assert statement.sql == (
        "COPY \"_tributary_staging\" FROM 's3://b/staging/m.json' ACCESS_KEY_ID 'AKIAEXAMPLE' "
        "SECRET_ACCESS_KEY 's3cr''et' FORMAT AS PARQUET MANIFEST"
    )
    assert "s3cr" not in statement.redacted and "SECRET_ACCESS_KEY '****'" in statement.redacted


def test_copy_without_a_role_or_keys_is_refused_clearly():
    destination = RedshiftDestination(config=RedshiftSettings(url="postgresql://unused"), s3_config=S3Settings(bucket="b"))
    with pytest.raises(LoadError, match="needs an IAM role"):
        destination.copy_statement("t", "s3://b/m.json")


def test_types_names_and_json_land_as_redshift_declares_them(redshift, spool_files):
    redshift.destination.load(request_for(spool_files([{"OrderId": 7, "Lines": [{"sku": "A"}], "Note": "x"}]), "run-1"))
    assert redshift.types("orders") == {
        "orderid": "bigint", "lines": "super", "note": "character varying",
        "_tributary_run_id": "character varying", "_tributary_loaded_at": "timestamp with time zone",
    }
    assert redshift.rows("orders") == [{"orderid": 7, "lines": [{"sku": "A"}], "note": "x"}]


def test_text_redshift_cannot_store_is_rejected_with_the_reason(redshift, spool_files):
    files = spool_files([{"id": 1, "body": "ok"}, {"id": 2, "body": "x" * 65536}, {"id": 3, "body": "nul\x00"}])
    with pytest.raises(RejectedRowsError, match="longer than 65535 bytes"):
        redshift.destination.load(request_for(files, "run-1"))
    result = redshift.destination.load(request_for(files, "run-1", ratio=1.0))
    assert (result.rows, result.rejected) == (1, 2)
    reasons = sorted(r["reason"] for r in redshift.read_rejects("orders"))
    assert "longer than 65535 bytes" in reasons[1] and "contains a NUL character" in reasons[0]


def test_a_failure_after_copy_rolls_back_the_ddl_and_the_rows(redshift, spool_files):
    redshift.destination.load(request_for(spool_files([{"id": 1}]), "run-1"))
    before = redshift.rows("orders", audit=True), redshift.types("orders")

    def copy_then_lose_the_connection(session, statement):
        redshift.copier(session, statement)
        raise ConnectionError("connection to the cluster lost")

    failing = redshift.make(copier=copy_then_lose_the_connection)
    with pytest.raises(ConnectionError):
        failing.load(request_for(spool_files([{"id": 2, "added": "new column"}]), "run-2"))
    assert (redshift.rows("orders", audit=True), redshift.types("orders")) == before
    assert redshift.leftovers() == []
