"""S3 specifics: where the files go, the manifests a reader follows, the JSON-lines option."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace

import pytest

from storage.destinations.base import LoadError
from storage.destinations.s3 import S3Destination
from storage.destinations.s3.objects import list_keys, s3_client
from tests.destinations.harness import request_for


def _json(client, bucket, key):
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_files_and_manifests_are_laid_out_by_feed_date_and_run(s3_settings, spool_files):
    destination = S3Destination(config=s3_settings, chunk_rows=2)
    result = destination.load(request_for(spool_files([{"id": 1}, {"id": 2}, {"id": 3}]), "run-1"))
    client, bucket = s3_client(s3_settings), s3_settings.bucket
    assert result.location == f"s3://{bucket}/lake/orders/2024-06-01/run-1"
    assert sorted(list_keys(client, bucket, "")) == [
        "lake/orders/2024-06-01/run-1/manifest.json",
        "lake/orders/2024-06-01/run-1/part-00000.parquet",
        "lake/orders/manifest.json",
    ]
    run_manifest = _json(client, bucket, "lake/orders/2024-06-01/run-1/manifest.json")
    size = client.head_object(Bucket=bucket, Key="lake/orders/2024-06-01/run-1/part-00000.parquet")["ContentLength"]
    assert run_manifest == {"entries": [{
        "url": f"s3://{bucket}/lake/orders/2024-06-01/run-1/part-00000.parquet", "mandatory": True,
        "meta": {"content_length": size}}]}
    feed_manifest = _json(client, bucket, "lake/orders/manifest.json")
    assert [e["url"] for e in feed_manifest["entries"]] == [run_manifest["entries"][0]["url"]]
    assert feed_manifest["columns"] == [{"name": "id", "type": "integer"}]
    assert [(r["run_id"], r["rows"]) for r in feed_manifest["runs"]] == [("run-1", 3)]


def test_truncate_and_insert_switches_the_manifest_and_removes_the_replaced_files(s3_settings, spool_files):
    destination = S3Destination(config=s3_settings)
    destination.load(request_for(spool_files([{"id": 1}]), "run-1", "truncate_insert"))
    destination.load(request_for(spool_files([{"id": 2}]), "run-2", "truncate_insert"))
    client, bucket = s3_client(s3_settings), s3_settings.bucket
    manifest = _json(client, bucket, "lake/orders/manifest.json")
    assert [e["run_id"] for e in manifest["entries"]] == ["run-2"]
    assert not [k for k in list_keys(client, bucket, "") if "/run-1/" in k]
    assert destination.has_run("orders", "run-1")  # replaced, but still remembered as loaded


def test_json_lines_format_writes_nested_values_as_json(s3_settings, spool_files):
    destination = S3Destination(config=replace(s3_settings, file_format="jsonl"))
    destination.load(request_for(spool_files([{"id": 1, "tags": ["a"], "at": "2024-01-02T03:04:05Z"}]), "run-1"))
    client, bucket = s3_client(s3_settings), s3_settings.bucket
    key = "lake/orders/2024-06-01/run-1/part-00000.jsonl.gz"
    lines = gzip.decompress(client.get_object(Bucket=bucket, Key=key)["Body"].read()).decode().splitlines()
    record = json.loads(lines[0])
    assert record["id"] == 1 and record["tags"] == ["a"] and record["_tributary_run_id"] == "run-1"
    assert record["at"].startswith("2024-01-02 03:04:05")
    assert _json(client, bucket, "lake/orders/manifest.json")["format"] == "jsonl"


def test_a_missing_bucket_is_reported_before_anything_is_written(s3_settings, spool_files):
    destination = S3Destination(config=replace(s3_settings, bucket="no-such-bucket"))
    with pytest.raises(LoadError, match="the S3 bucket no-such-bucket does not exist"):
        destination.check()
    with pytest.raises(LoadError, match="the S3 bucket no-such-bucket does not exist"):
        destination.load(request_for(spool_files([{"id": 1}]), "run-1"))
    unreachable = S3Destination(config=replace(s3_settings, endpoint_url="http://127.0.0.1:1"))
    with pytest.raises(LoadError, match="cannot reach S3"):
        unreachable.check()
    with pytest.raises(LoadError, match="set a bucket"):
        S3Destination(config=replace(s3_settings, bucket="")).check()
