"""``AzerionHook`` inside a ``@task``: for flows the operator does not cover.

What it shows:

- the hook built from the ``azerion_default`` connection, used for a cheap call (``list_models``,
  billed nothing) and one generation, then closed;
- the image bytes written with ``ObjectStoragePath`` to
  ``{azerion_output_base}/azerion_hook_in_task/{run_after}.{ext}`` (the run's ``run_after`` as
  ``YYYYMMDDTHHMMSS``: every run has one, manual runs without a logical date too);
- only small metadata returned (URI, size, checksum): image bytes never belong in XCom.

The hook, ``base64`` and ``ObjectStoragePath`` are imported inside the task, so parsing this file
stays cheap. Prefer ``ImageGenerationOperator`` when it fits: it adds sidecars, resumable retries
and concurrency on top of exactly these calls.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="azerion_hook_in_task",
    description="List models and generate one image with AzerionHook in a @task",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    params={
        "prompt": Param("an isometric pixel-art arcade cabinet", type="string", maxLength=4000),
        "model": Param("stable-image-core-1.1", type="string"),
    },
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["azerion", "example"],
):

    @task(multiple_outputs=True)
    def generate_with_hook(output_base: str, params=None, dag_run=None, dag=None) -> dict:
        """List the models, generate one image, store it and return where it went.

        :param output_base: folder URL for the image (rendered from a template at run time).
        """
        import base64
        import hashlib

        from airflow.sdk import ObjectStoragePath
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_provider_azerion.hooks.azerion import AzerionHook
        from airflow_provider_azerion.image_formats import sniff_image_format

        hook = AzerionHook(conn_id="azerion_default")
        try:
            models = [model["id"] for model in hook.list_models()]
            if params["model"] not in models:
                # Fail before the paid call, and without retries: waiting will not add the model.
                raise AirflowFailException(
                    f"model {params['model']!r} is not available; choose one of {models}"
                )
            response = hook.generate_images(params["prompt"], model=params["model"])
            image = response.images[0]
            data = base64.b64decode(image.b64_json) if image.b64_json else hook.download_image(image.url)
        finally:
            hook.close()

        fmt = sniff_image_format(data)
        if fmt is None:
            raise ValueError(f"the API returned {len(data)} bytes that are not a known image format")
        stamp = dag_run.run_after.strftime("%Y%m%dT%H%M%S")  # not ts_nodash: manual runs lack it
        target = ObjectStoragePath(output_base) / dag.dag_id / f"{stamp}.{fmt.extension}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return {
            "uri": str(target),
            "media_type": fmt.media_type,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "model": params["model"],
            "models_available": len(models),
            "total_tokens": response.usage.total_tokens,
        }

    # Arguments passed here are templates rendered when the task runs; a default in the function
    # signature would not be.
    generate_with_hook(output_base="{{ var.value.get('azerion_output_base', 'file:///tmp/azerion-images') }}")
