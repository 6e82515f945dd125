"""A batch too large for one review: the review mapped over the generation's chunks.

``review_whole`` is the mistake (one review of every image): it fails before asking anyone.
``review`` is the pattern: one review per chunk of the manifest, and one publish task that gets
every chunk's decision.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from airflow_provider_azerion.operators.review import ImageReviewOperator

with DAG(
    dag_id="azerion_review_chunks",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    render_template_as_native_obj=True,
    params={"prompts": ["a quiet harbour"]},
):
    generate = ImageGenerationOperator(
        task_id="generate",
        prompt="{{ params.prompts }}",
        output_path="{{ var.value.azerion_output_base }}",
        max_active_requests=8,
    )
    ImageReviewOperator(task_id="review_whole", images=generate.output, retries=3)

    @task
    def chunks_of(result: dict) -> list[dict]:
        return result["chunks"]

    review = ImageReviewOperator.partial(task_id="review").expand(images=chunks_of(generate.output))

    @task
    def publish(decisions: list[dict]) -> list[str]:
        """The approved images of every chunk (a real DAG would copy them, as the example does)."""
        return [image["uri"] for decision in decisions for image in decision["approved"]]

    publish(review.output)
