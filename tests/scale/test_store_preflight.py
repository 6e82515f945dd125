"""On an object store, a bucket that does not exist costs no generation and is not retried."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_azerion.exceptions import AzerionStorageError
from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from tests.operators.helpers import execute, generated_prompts
from tests.scale.conftest import BUCKET

pytestmark = pytest.mark.azerion_emulator(max_side=16)


def test_a_missing_bucket_fails_before_any_generation(emulator, s3):
    task = ImageGenerationOperator(
        task_id="generate",
        prompt=["a fox", "an owl"],
        output_path="s3://no-such-bucket-azerion/images/",
        output_conn_id=s3.conn_id,
        extra_params={"size": "16x16"},
    )

    with pytest.raises(AzerionStorageError) as caught:
        execute(task)

    assert isinstance(caught.value, AirflowFailException)
    assert "s3://no-such-bucket-azerion/images/" in str(caught.value)
    assert generated_prompts(emulator) == []


def test_the_probe_costs_one_put_and_one_delete_and_leaves_no_object(emulator, s3):
    task = ImageGenerationOperator(
        task_id="generate",
        prompt=["a fox"],
        output_path=f"s3://{BUCKET}/probe/",
        output_conn_id=s3.conn_id,
        extra_params={"size": "16x16"},
    )
    s3.proxy.reset()

    execute(task)

    counts = s3.proxy.counts()
    assert counts.get("DELETE", 0) == 1  # the probe's; nothing else is removed on a first try
    assert counts["PUT"] == 1 + 3  # the probe, the image, its sidecar, the manifest
    assert sorted(key.rsplit("/", 1)[-1] for key in s3.objects("probe/")) == [
        "0000-0.jpg",
        "0000-0.json",
        "manifest.jsonl",
    ]
