"""DAGs of the scale tests (``tests/scale``): large batches, and downstream tasks mapped over them.

``azerion_scale_mapping`` is the pattern the README documents. One task generates a batch too
large for its image entries to fit in the XCom; a small ``@task`` hands its ``chunks`` (ranges of
the task's manifest) to a task mapped with ``.expand``, one task instance per chunk, each reading
its images with ``read_manifest``. A second, small batch shows the per-image variant:
``images_of`` gives the images (from the XCom here), one mapped task instance per image.

``azerion_scale_run`` is the fan-out of the scale run: prompts cut into chunks upstream, one
mapped generation per chunk, images in S3 through an AWS connection. Prompts, folder and
connection come from the run's ``conf``.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)

with DAG(
    "azerion_scale_mapping",
    schedule=None,
    start_date=START,
    params={"prompts": 250, "output_path": "file:///tmp/azerion-scale-unset/"},
    render_template_as_native_obj=True,
    default_args={"retries": 0},
):

    @task
    def batch(params=None) -> list[str]:
        return [f"mapped prompt {i:04d}" for i in range(params["prompts"])]

    large = ImageGenerationOperator(
        task_id="generate",
        prompt=batch(),
        output_path="{{ params.output_path }}",
        extra_params={"size": "16x16"},
        max_active_requests=8,
    )

    @task
    def chunks_of(result: dict) -> list[dict]:
        """The chunks of the task's manifest: one downstream task instance each."""
        return result["chunks"]

    @task
    def check_chunk(chunk: dict) -> list[int]:
        """Read one chunk's images from the manifest and check each file against its sha256."""
        import hashlib

        from airflow.sdk import ObjectStoragePath

        from airflow_provider_azerion.outputs import read_manifest

        images = read_manifest(**chunk)
        for image in images:
            data = ObjectStoragePath(image["uri"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != image["sha256"]:
                raise ValueError(f"{image['uri']} does not match its sha256")
        return [image["prompt_index"] for image in images]

    check_chunk.expand(chunk=chunks_of(large.output))

    small = ImageGenerationOperator(
        task_id="generate_small",
        prompt=["a red fox", "a blue whale"],
        output_path="{{ params.output_path }}",
        extra_params={"size": "16x16"},
    )

    @task
    def image_list(result: dict) -> list[dict]:
        """Every image of the task, whatever the batch size (the XCom's entries, or the manifest)."""
        from airflow_provider_azerion.outputs import images_of

        return images_of(result)

    @task
    def describe(image: dict) -> str:
        return f"{image['prompt_index']}: {image['prompt']} -> {image['uri']}"

    describe.expand(image=image_list(small.output))


with DAG(
    "azerion_scale_run",
    schedule=None,
    start_date=START,
    params={"prompts": 20, "chunk": 10, "output_path": "s3://unset/", "aws_conn_id": "aws_default"},
    render_template_as_native_obj=True,
    default_args={"retries": 8, "retry_delay": datetime.timedelta(0)},
):

    @task
    def prompt_chunks(params=None) -> list[list[str]]:
        """The prompts, ``chunk`` to a list: one mapped generation each."""
        prompts = [f"s{i:04d}" for i in range(params["prompts"])]
        size = params["chunk"]
        return [prompts[start : start + size] for start in range(0, len(prompts), size)]

    ImageGenerationOperator.partial(
        task_id="generate",
        output_path="{{ params.output_path }}",
        output_conn_id="{{ params.aws_conn_id }}",
        extra_params={"size": "16x16"},
        max_active_requests=4,
    ).expand(prompt=prompt_chunks())
