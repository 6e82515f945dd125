"""Airflow DAGs the operator tests run with ``dag.test()``.

Each DAG is one way of using ``ImageGenerationOperator``; what varies between test cases (prompts,
output folder, model, API parameters) comes from the run's ``conf`` through ``params``. The DAGs
render templates as native objects, so ``"{{ params.prompts }}"`` becomes a real list.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, Asset, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

OUTLET = Asset(name="azerion_test_images", uri="file:///azerion-test/images")

PARAMS = {
    "prompts": ["a red fox in the snow"],
    "output_path": "file:///tmp/azerion-test-output-unset/",
    "model": "stable-image-core-1.1",
    "style": None,
    "extra_params": {"size": "64x64"},
}
TEMPLATED = {
    "prompt": "{{ params.prompts }}",
    "output_path": "{{ params.output_path }}",
    "model": "{{ params.model }}",
    "style": "{{ params.style }}",
    "extra_params": "{{ params.extra_params }}",
}
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def _dag(dag_id: str, **kwargs) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        params=PARAMS,
        render_template_as_native_obj=True,
        default_args={"retries": 0},
        **kwargs,
    )


with _dag("azerion_images"):
    ImageGenerationOperator(task_id="generate", max_active_requests=4, **TEMPLATED)

with _dag("azerion_images_retry"):
    # One request at a time so a scripted emulator fault hits a known prompt.
    ImageGenerationOperator(
        task_id="generate",
        max_active_requests=1,
        retries=1,
        retry_delay=datetime.timedelta(0),
        **TEMPLATED,
    )

with _dag("azerion_images_overwrite"):
    ImageGenerationOperator(task_id="generate", overwrite=True, **TEMPLATED)

with _dag("azerion_images_url"):
    ImageGenerationOperator(task_id="generate", response_format="url", **TEMPLATED)

with _dag("azerion_images_n2"):
    ImageGenerationOperator(task_id="generate", n=2, **TEMPLATED)

with _dag("azerion_images_outlets"):
    ImageGenerationOperator(task_id="generate", outlets=[OUTLET], **TEMPLATED)

with _dag("azerion_images_mapped"):
    ImageGenerationOperator.partial(
        task_id="generate",
        output_path="{{ params.output_path }}",
        extra_params="{{ params.extra_params }}",
    ).expand(prompt=["a red fox", "a blue whale", "a green owl"])

with _dag("azerion_images_from_xcom"):

    @task
    def prompt_list(params=None) -> list[str]:
        return list(params["prompts"])

    @task
    def single_prompt(params=None) -> str:
        return params["prompts"][0]

    ImageGenerationOperator(
        task_id="from_list",
        prompt=prompt_list(),
        output_path="{{ params.output_path }}",
        extra_params="{{ params.extra_params }}",
    )
    ImageGenerationOperator(
        task_id="from_str",
        prompt=single_prompt(),
        output_path="{{ params.output_path }}",
        extra_params="{{ params.extra_params }}",
    )

with _dag("azerion_images_timeout"):
    # Two requests at a time and a short execution_timeout: the task must end within seconds of it.
    ImageGenerationOperator(
        task_id="generate",
        max_active_requests=2,
        execution_timeout=datetime.timedelta(seconds=3),
        **TEMPLATED,
    )


for _log_each_image in (True, False):  # the operator's log_each_image, which is not templated
    with _dag(f"azerion_images_log_each_image_{str(_log_each_image).lower()}"):
        ImageGenerationOperator(
            task_id="generate", max_active_requests=4, log_each_image=_log_each_image, **TEMPLATED
        )
