"""Fan out: one mapped task instance per prompt, then one manifest of everything produced.

What it shows:

- an upstream ``@task`` builds the prompts from the run's params (edit them in the trigger form);
- ``ImageGenerationOperator.partial(...).expand(prompt=...)`` makes one task instance per prompt,
  each retried, logged and resumable on its own, and spread over the executor's workers;
- a downstream ``@task`` reads the mapped XCom (one result dict per map index; ``images_of`` gives
  its images whatever the batch size) and writes one ``manifest.jsonl`` for the whole run next to
  the task folders (each of which has its own) with ``ObjectStoragePath``, so the same code works
  for ``file://``, ``s3://`` or ``gs://`` outputs.

Output: ``{azerion_output_base}/azerion_mapped_prompts/{run_id}/generate-{map_index}/`` per prompt
and ``{azerion_output_base}/azerion_mapped_prompts/{run_id}/manifest.jsonl``. The Variable
``azerion_output_base`` defaults to ``file:///tmp/azerion-images``; ``file://`` only works when all
workers share that disk, otherwise point it at object storage.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

OUTPUT_BASE = "{{ var.value.get('azerion_output_base', 'file:///tmp/azerion-images') }}"

with DAG(
    dag_id="azerion_mapped_prompts",
    description="One mapped Azerion generation per prompt, plus a JSONL manifest",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    params={
        "subjects": Param(
            ["a red fox in fresh snow", "a lighthouse at dusk", "a bowl of ramen, top view"],
            type="array",
            minItems=1,
            description="One image is generated per subject.",
        ),
        "style": Param("a watercolour illustration", type="string"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": 2.0},
    tags=["azerion", "example"],
):

    @task
    def build_prompts(params=None) -> list[str]:
        """One prompt per subject; the list's length decides how many task instances run."""
        return [f"{params['style']} of {subject}" for subject in params["subjects"]]

    generated = ImageGenerationOperator.partial(
        task_id="generate",
        output_path=OUTPUT_BASE,
        # Each task instance sends one prompt; cap concurrent API calls across all of them with an
        # Airflow pool (pool="azerion", pool_slots=1) when the API's rate limit matters.
        max_active_requests=1,
    ).expand(prompt=build_prompts())

    @task(multiple_outputs=True)
    def write_manifest(results) -> dict:
        """Write one JSON line per image to ``manifest.jsonl`` beside the mapped task folders.

        :param results: the mapped XCom: for each map index, the result dict it returned.
        :return: the manifest's URI and the number of images (small: it goes to XCom too).
        """
        import json

        from airflow.sdk import ObjectStoragePath

        from airflow_provider_azerion.outputs import images_of

        # A slice fetches every map index's result in one request, in map-index order (plain
        # iteration would ask for one index at a time and probe one past the end). images_of
        # reads a task's manifest when its images did not fit in its XCom.
        lines = [
            json.dumps({"map_index": map_index, **image}, sort_keys=True)
            for map_index, result in enumerate(results[:])
            for image in images_of(result)
        ]
        if not lines:
            raise ValueError("the mapped generation produced no images; nothing to list")
        # Images sit in {base}/{dag_id}/{run_id}/generate-{i}/: the run folder is two levels up.
        first_image = ObjectStoragePath(json.loads(lines[0])["uri"])
        manifest = first_image.parent.parent / "manifest.jsonl"
        manifest.write_text("\n".join(lines) + "\n")
        return {"manifest": str(manifest), "images": len(lines)}

    write_manifest(generated.output)
