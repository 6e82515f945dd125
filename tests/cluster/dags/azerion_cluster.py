"""DAGs of the cluster tests (``tests/cluster``): a long batch to kill a worker under, and a pool.

``azerion_cluster_batch``: one task generating ``prompts`` images, ``max_active_requests`` at a
time, to a ``prefix`` of the test bucket through the ``aws_default`` connection; retried at once
(``retry_delay`` 0) when its worker dies, so the retry resumes on the other worker.

``azerion_cluster_pool``: ``tasks`` mapped generations of ``prompts`` images each, every one in
the ``azerion_cluster`` pool with one slot per task: the pool's size caps the requests in flight
across all workers.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
OUTPUT = "s3://{{ params.bucket }}/{{ params.prefix }}/"
POOL = "azerion_cluster"

with DAG(
    "azerion_cluster_batch",
    schedule=None,
    start_date=START,
    params={"prompts": 10, "bucket": "unset", "prefix": "batch"},
    render_template_as_native_obj=True,
    default_args={"retries": 3, "retry_delay": datetime.timedelta(0)},
):

    @task
    def prompts(params=None) -> list[str]:
        return [f"batch prompt {i:04d}" for i in range(params["prompts"])]

    ImageGenerationOperator(
        task_id="generate",
        prompt=prompts(),
        output_path=OUTPUT,
        output_conn_id="aws_default",
        extra_params={"size": "64x64"},
        max_active_requests=2,
    )

with DAG(
    "azerion_cluster_pool",
    schedule=None,
    start_date=START,
    params={"tasks": 6, "prompts": 3, "bucket": "unset", "prefix": "pool"},
    render_template_as_native_obj=True,
    default_args={"retries": 0},
):

    @task
    def chunks(params=None) -> list[list[str]]:
        n = params["prompts"]
        return [[f"pool prompt {t}-{i}" for i in range(n)] for t in range(params["tasks"])]

    ImageGenerationOperator.partial(
        task_id="generate",
        output_path=OUTPUT,
        output_conn_id="aws_default",
        extra_params={"size": "64x64"},
        max_active_requests=1,
        pool=POOL,
        pool_slots=1,
    ).expand(prompt=chunks())
