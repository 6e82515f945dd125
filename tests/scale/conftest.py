"""Fixtures for the scale tests: the emulator behind ``azerion_default``, and S3 with a request count.

S3 is moto's server on loopback behind :class:`benchmarks.s3_latency.S3LatencyProxy`, which counts
every request by kind and key (and adds no latency unless a test sets ``proxy.latency``). The
operator reaches it through an Airflow connection (``S3.conn_id``), as it would reach AWS. Each
test gets a connection id of its own: Airflow keeps one filesystem per connection id for the
process's lifetime, and an earlier test's would still point at that test's stopped server.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks.s3_latency import S3LatencyProxy, aws_connection, moto_s3, s3_client

BUCKET = "azerion-scale-bucket"


@pytest.fixture
def emulator(azerion_emulator, monkeypatch):
    """The emulator behind connection ``azerion_default``, with fast hook backoff."""
    connection = {
        "conn_type": "azerion",
        "host": azerion_emulator.base_url,
        "password": azerion_emulator.api_key,
        "extra": {"backoff_factor": 0.01, "max_retry_wait": 0.05},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AZERION_DEFAULT", json.dumps(connection))
    monkeypatch.delenv("AZERION_API_KEY", raising=False)
    return azerion_emulator


@dataclass
class S3:
    """moto S3 for one test: a boto3 client straight to moto, and the counting proxy the operator uses."""

    client: Any
    proxy: S3LatencyProxy
    moto_url: str
    conn_id: str

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix``, by key (read straight from moto: not counted)."""
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return {key: self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}

    def cold(self) -> None:
        """Forget fsspec's cached listings, as a new task process would have none."""
        from airflow.sdk import ObjectStoragePath

        ObjectStoragePath(f"s3://{BUCKET}/", conn_id=self.conn_id).fs.invalidate_cache()


@pytest.fixture
def s3(monkeypatch):
    """A bucket on moto's S3 server, reached through a connection of its own and a counting proxy."""
    conn_id = f"aws_scale_{uuid.uuid4().hex[:8]}"
    with moto_s3() as (moto_url, proxy):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(aws_connection(proxy.url)))
        client = s3_client(moto_url)
        client.create_bucket(Bucket=BUCKET)
        store = S3(client=client, proxy=proxy, moto_url=moto_url, conn_id=conn_id)
        store.cold()
        yield store
        store.cold()
