"""Generate, let a person review, publish only what they approved.

What it shows:

- ``ImageGenerationOperator`` stores the images under ``{azerion_output_base}/...`` (the Variable,
  as in ``azerion_daily_content``; default ``file:///tmp/azerion-images``);
- ``ImageReviewOperator`` puts them to a person under **Required Actions** in Airflow's UI (or
  the HITL REST API): thumbnails and prompts in the request, one option per image plus
  ``Approve all`` and ``Reject all``, and a comment. Nobody answering within
  ``response_timeout`` rejects everything: nothing is published unseen;
- ``publish`` copies only the approved images, each followed by its sidecar, to
  ``{azerion_output_base}/published/{dag_id}/{run_id}/`` with ``ObjectStoragePath.copy`` (a
  server-side copy on object stores), and emits an event of the ``PUBLISHED`` asset whose extra
  lists them. When nothing is approved the review skips ``publish``; the run still succeeds.

Restrict who may answer with ``assigned_users=[{"id": "...", "name": "..."}]`` and get told with
``notifiers=[...]`` (both go to the standard provider's HITL operator as they are).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from airflow_provider_azerion.operators.review import ImageReviewOperator

DEFAULT_OUTPUT_BASE = "file:///tmp/azerion-images"
OUTPUT_BASE = "{{ var.value.get('azerion_output_base', '" + DEFAULT_OUTPUT_BASE + "') }}"
#: Where approved images go, per run.
PUBLISHED_FOLDER = OUTPUT_BASE.rstrip("/") + "/published/{{ dag.dag_id }}/{{ run_id }}/"
#: One event per publication; its extra has ``folder_uri`` and ``uris``. The "x-" scheme marks a
#: user-defined URI, which Airflow does not try to normalise through a provider.
PUBLISHED = Asset(name="azerion_published_images", uri="x-azerion://published/images")

with DAG(
    dag_id="azerion_review_publish",
    description="Generate images, have a person approve them in the UI, publish the approved ones",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    # "{{ params.prompts }}" renders to the list itself, not to its text.
    render_template_as_native_obj=True,
    params={
        "prompts": Param(
            [
                "a red fox in fresh snow, morning light",
                "a lighthouse on a cliff at dusk",
                "a bowl of ramen, top view, studio light",
                "a hot-air balloon over tulip fields",
            ],
            type="array",
            minItems=1,
        ),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["azerion", "example", "review"],
):
    generate = ImageGenerationOperator(
        task_id="generate",
        prompt="{{ params.prompts }}",
        output_path=OUTPUT_BASE,
    )

    review = ImageReviewOperator(
        task_id="review",
        images=generate.output,
        subject="Images of {{ dag_run.run_after | ds }} to publish",
        body="Approve the images that may go on the site.",
        response_timeout=timedelta(hours=24),
        retries=0,
    )

    @task(outlets=[PUBLISHED])
    def publish(decision: dict, destination: str, *, outlet_events=None) -> list[str]:
        """Copy each approved image, then its sidecar, into ``destination``; return their new URIs.

        A sidecar is copied after its image, so a reader that sees a sidecar sees a complete image.
        """
        from airflow.sdk import ObjectStoragePath

        target = ObjectStoragePath(destination)
        target.mkdir(parents=True, exist_ok=True)
        published = []
        for image in decision["approved"]:
            for uri in (image["uri"], image["metadata_uri"]):
                source = ObjectStoragePath(uri)
                source.copy(target / source.name)
            published.append(str(target / ObjectStoragePath(image["uri"]).name))
        outlet_events[PUBLISHED].extra = {"folder_uri": str(target), "uris": published}
        return published

    publish(review.output, destination=PUBLISHED_FOLDER)
