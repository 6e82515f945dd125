"""A DAG for the lineage test (``tests/lineage``): one generation into ``conf["output_path"]``."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

with DAG(
    "azerion_lineage",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    params={"output_path": "file:///tmp/azerion-lineage-unset/"},
    render_template_as_native_obj=True,
    default_args={"retries": 0},
):
    ImageGenerationOperator(
        task_id="generate",
        prompt=["a lighthouse at dusk", "a red fox in fresh snow"],
        output_path="{{ params.output_path }}",
        extra_params={"size": "16x16"},
    )
