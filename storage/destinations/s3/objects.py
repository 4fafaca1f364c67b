"""Small S3 helpers shared by the S3 destination and Redshift's staging (boto3 imported on use)."""

from __future__ import annotations

import json
from pathlib import Path

from storage.destinations.base import LoadError
from storage.destinations.drivers import driver


def s3_client(config):
    """A boto3 S3 client from S3Settings; empty keys fall back to boto3's default chain."""
    boto3 = driver("boto3", "boto3", "S3")
    from botocore.config import Config

    kwargs = {"region_name": config.region or None, "endpoint_url": config.endpoint_url or None,
              "config": Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10)}
    if config.access_key_id:
        kwargs.update(aws_access_key_id=config.access_key_id, aws_secret_access_key=config.secret_access_key)
    return boto3.client("s3", **kwargs)


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def upload(client, bucket: str, key: str, path: Path) -> dict:
    """Upload a file (multipart when large) and return its manifest entry (Redshift's format)."""
    client.upload_file(str(path), bucket, key)
    return {"url": url(bucket, key), "mandatory": True, "meta": {"content_length": path.stat().st_size}}


def read_json(client, bucket: str, key: str) -> dict | None:
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def put_json(client, bucket: str, key: str, data: dict) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(data, indent=1).encode(),
                      ContentType="application/json")


def delete_keys(client, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
        chunk = keys[start:start + 1000]
        if chunk:
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})


def list_keys(client, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def key_of(bucket: str, object_url: str) -> str:
    prefix = f"s3://{bucket}/"
    if not object_url.startswith(prefix):
        raise LoadError(f"{object_url} is not in the bucket {bucket}")
    return object_url[len(prefix):]


def check_bucket(client, bucket: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    if not bucket:
        raise LoadError("S3 is not configured: set a bucket in the warehouse settings")
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        why = "does not exist" if code in ("404", "NoSuchBucket") else f"is not accessible ({exc})"
        raise LoadError(f"the S3 bucket {bucket} {why}") from None
    except BotoCoreError as exc:
        raise LoadError(f"cannot reach S3: {exc}") from None
