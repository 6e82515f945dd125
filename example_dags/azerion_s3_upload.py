"""The mapped flow, writing straight to S3: images, sidecars and a manifest under one prefix.

What it shows:

- ``output_path="s3://<bucket>/<prefix>/"`` with ``output_conn_id`` naming an AWS connection:
  the operator writes through ``ObjectStoragePath`` (s3fs), each object in one request, so a
  reader never sees a half-written image;
- bucket, prefix and AWS connection id as run params (defaults below; change them in the trigger
  form or with ``airflow dags trigger --conf``), so no credentials or bucket names are baked in;
- a manifest task that writes ``manifest.jsonl`` beside the images with the same connection.

Needs ``pip install "airflow-provider-azerion[s3]"`` (Amazon provider with s3fs). Objects land in
``s3://{bucket}/{prefix}/azerion_s3_upload/{run_id}/generate-{map_index}/`` and the manifest in
``s3://{bucket}/{prefix}/azerion_s3_upload/{run_id}/manifest.jsonl``. Workers on any host can
write there: this is the layout to use with the Celery or Kubernetes executor.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

with DAG(
    dag_id="azerion_s3_upload",
    description="Mapped Azerion generations stored in S3, with a JSONL manifest",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    params={
        "bucket": Param("azerion-images", type="string", description="S3 bucket to write to."),
        "prefix": Param("generated", type="string", description="Key prefix inside the bucket."),
        "aws_conn_id": Param("aws_default", type="string", description="Airflow AWS connection id."),
        "prompts": Param(
            ["a paper boat on a rainy street", "a hot-air balloon over tulip fields"],
            type="array",
            minItems=1,
        ),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": 2.0},
    tags=["azerion", "example", "s3"],
):

    @task
    def build_prompts(params=None) -> list[str]:
        """The prompts to fan out over, from the run's params."""
        return list(params["prompts"])

    generated = ImageGenerationOperator.partial(
        task_id="generate",
        output_path="s3://{{ params.bucket }}/{{ params.prefix }}/",
        output_conn_id="{{ params.aws_conn_id }}",
        max_active_requests=1,
    ).expand(prompt=build_prompts())

    @task(multiple_outputs=True)
    def write_manifest(results, params=None) -> dict:
        """Write one JSON line per image to ``manifest.jsonl`` next to the images in S3.

        :param results: the mapped XCom: for each map index, the result dict it returned.
        :return: the manifest's ``s3://`` URI and the number of images.
        """
        import json

        from airflow.sdk import ObjectStoragePath

        from airflow_provider_azerion.outputs import images_of

        # One request for every map index's result, in map-index order; images_of reads a task's
        # manifest (through the same connection) when its images did not fit in its XCom.
        lines = [
            json.dumps({"map_index": map_index, **image}, sort_keys=True)
            for map_index, result in enumerate(results[:])
            for image in images_of(result, conn_id=params["aws_conn_id"])
        ]
        if not lines:
            raise ValueError("the mapped generation produced no images; nothing to list")
        # XCom URIs name the object without credentials; reattach the connection to write.
        first_image = ObjectStoragePath(json.loads(lines[0])["uri"], conn_id=params["aws_conn_id"])
        manifest = first_image.parent.parent / "manifest.jsonl"
        manifest.write_text("\n".join(lines) + "\n")
        return {"manifest": f"s3://{manifest.path}", "images": len(lines)}

    write_manifest(generated.output)
