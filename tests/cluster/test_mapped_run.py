"""The mapped example on the Celery cluster: triggered through the REST API, spread over both workers."""

from __future__ import annotations

import json

import pytest

from tests.cluster.cluster import s3_objects, s3_put_counts
from tests.cluster.conftest import BUCKET

DAG_ID = "azerion_s3_upload"
PROMPTS = [f"a paper boat number {i}" for i in range(8)]


@pytest.mark.timeout(600)
def test_the_mapped_example_runs_over_both_workers_and_stores_each_image_once(cluster):
    cluster.emulator(reset=True, latency=0.5)
    conf = {"bucket": BUCKET, "prefix": "mapped", "aws_conn_id": "aws_default", "prompts": PROMPTS}

    run_id = cluster.trigger(DAG_ID, conf)
    state = cluster.wait_for_run(DAG_ID, run_id)

    tis = cluster.task_instances(DAG_ID, run_id)
    assert state == "success", tis
    generate = [ti for ti in tis if ti["task_id"] == "generate"]
    assert [ti["state"] for ti in generate] == ["success"] * len(PROMPTS)
    assert {ti["hostname"] for ti in generate} == {"worker-1.localhost", "worker-2.localhost"}
    client = cluster.s3()
    prefix = f"mapped/{DAG_ID}/"
    objects = s3_objects(client, BUCKET, prefix)
    images = sorted(key for key in objects if key.endswith(".jpg"))
    assert len(images) == len(PROMPTS)
    assert set(s3_put_counts(client, BUCKET, prefix).values()) == {1}, "every object written once"
    (manifest,) = (key for key in objects if key.endswith("/manifest.jsonl") and "/generate-" not in key)
    lines = [json.loads(line) for line in objects[manifest].splitlines()]
    assert sorted(line["prompt"] for line in lines) == sorted(PROMPTS)
    assert cluster.emulator_stats()["generation_count"] == len(PROMPTS)


@pytest.mark.timeout(600)
def test_the_examples_output_variable_points_them_at_s3(cluster):
    """``azerion_mapped_prompts`` writes under the Variable ``azerion_output_base``, set to S3 by ``up``."""
    cluster.emulator(reset=True, latency=0)
    subjects = ["a red fox", "a green owl"]

    run_id = cluster.trigger("azerion_mapped_prompts", {"subjects": subjects})
    state = cluster.wait_for_run("azerion_mapped_prompts", run_id)

    objects = s3_objects(cluster.s3(), "azerion-images", "examples/azerion_mapped_prompts/")
    assert state == "success"
    assert len([key for key in objects if key.endswith(".jpg")]) == len(subjects)
    assert cluster.api("GET", "/variables/azerion_output_base")["value"] == "s3://azerion-images/examples/"
