"""A review nobody answers: ``response_timeout`` of a few seconds, so its ``defaults`` decide."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from airflow_provider_azerion.operators.review import ImageReviewOperator

OUTPUT_BASE = "{{ var.value.azerion_output_base }}"

with DAG(
    dag_id="azerion_review_timeout",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    render_template_as_native_obj=True,
    params={"prompts": ["a quiet harbour"], "defaults": "Reject all"},
):
    generate = ImageGenerationOperator(
        task_id="generate", prompt="{{ params.prompts }}", output_path=OUTPUT_BASE
    )
    review = ImageReviewOperator(
        task_id="review", images=generate.output, response_timeout=timedelta(seconds=3)
    )
    approve_by_default = ImageReviewOperator(
        task_id="review_approving",
        images=generate.output,
        defaults="Approve all",
        response_timeout=timedelta(seconds=3),
    )

    @task
    def publish(decision: dict) -> int:
        return len(decision["approved"])

    publish.override(task_id="publish")(review.output)
    publish.override(task_id="publish_approving")(approve_by_default.output)
