"""``azerion_s3_upload`` under ``dag.test()``, writing to a real S3 protocol server on loopback.

The S3 server is moto's, run in a thread on 127.0.0.1; the DAG reaches it only through the AWS
connection ``aws_s3_test`` (``endpoint_url`` in its extra), exactly as it would reach AWS.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import moto_bucket
from tests.examples.conftest import EXAMPLE_DAGS, SECRET_KEY

DAG_FILE = EXAMPLE_DAGS / "azerion_s3_upload.py"
DAG_ID = "azerion_s3_upload"
BUCKET = "azerion-test-bucket"
PROMPTS = ["a paper boat", "a hot-air balloon", "a lighthouse"]

pytestmark = pytest.mark.azerion_emulator(max_side=64)


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on a free loopback port, an Airflow connection to it, and a bucket."""
    with moto_bucket(monkeypatch, "aws_s3_test", BUCKET) as client:
        yield client


def objects(client, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix`` in the test bucket, by key."""
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {
        item["Key"]: client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        for item in listing.get("Contents", [])
    }


def test_images_sidecars_and_manifest_land_in_the_bucket_and_agree(run_dag, emulator, s3):
    conf = {"bucket": BUCKET, "prefix": "daily/images", "aws_conn_id": "aws_s3_test", "prompts": PROMPTS}

    result = run_dag(DAG_FILE, DAG_ID, conf=conf, manual=True)  # no logical date, as the UI triggers

    assert result.state == "success"
    assert result.dag_run.logical_date is None
    stored = objects(s3)
    run_prefix = f"daily/images/{DAG_ID}/{result.run_id.replace(':', '_').replace('+', '_')}"
    assert sorted(stored) == sorted(
        [
            f"{run_prefix}/generate-{i}/{name}"
            for i in range(3)
            for name in ("0000-0.jpg", "0000-0.json", "manifest.jsonl")
        ]
        + [f"{run_prefix}/manifest.jsonl"]
    )
    for i, prompt in enumerate(PROMPTS):
        image = stored[f"{run_prefix}/generate-{i}/0000-0.jpg"]
        sidecar = json.loads(stored[f"{run_prefix}/generate-{i}/0000-0.json"])
        assert image.startswith(b"\xff\xd8\xff")
        assert hashlib.sha256(image).hexdigest() == sidecar["sha256"]
        assert len(image) == sidecar["bytes"]
        assert sidecar["prompt"] == prompt
    manifest = [json.loads(line) for line in stored[f"{run_prefix}/manifest.jsonl"].decode().splitlines()]
    assert [(entry["map_index"], entry["prompt"]) for entry in manifest] == list(enumerate(PROMPTS))
    for entry in manifest:
        key = entry["uri"].removeprefix(f"s3://{BUCKET}/")
        assert hashlib.sha256(stored[key]).hexdigest() == entry["sha256"]
    assert result.xcom("write_manifest") == {
        "manifest": f"s3://{BUCKET}/{run_prefix}/manifest.jsonl",
        "images": 3,
    }
    # URIs name objects, never the connection or its credentials.
    raw = json.dumps(result.xcom_rows("generate")) + stored[f"{run_prefix}/manifest.jsonl"].decode()
    assert "aws_s3_test" not in raw
    assert "testing" not in raw
    assert SECRET_KEY not in raw
