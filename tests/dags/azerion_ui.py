"""DAGs whose runs the Images tab tests look at (``tests/ui``).

What varies between tests (prompts, output folder, connection of the output store, image size)
comes from the run's ``conf`` through ``params``; templates render as native objects.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

PARAMS = {
    "prompts": ["a red fox in the snow"],
    "mapped_prompts": ["a blue whale", "a green owl"],
    "output_path": "file:///tmp/azerion-ui-test-output-unset/",
    "output_conn_id": None,
    "extra_params": {"size": "64x64"},
    "max_active_requests": 4,
}
#: An ``output_path`` without any template (the task using it never runs: nothing is written).
#: The templated arguments of the tasks whose folder the tab must find.
TEMPLATED = {
    "prompt": "{{ params.prompts }}",
    "output_path": "{{ params.output_path }}",
    "output_conn_id": "{{ params.output_conn_id }}",
    "extra_params": "{{ params.extra_params }}",
}
STATIC_OUTPUT_PATH = "file:///tmp/azerion-ui-tests-static-output/"
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        params=PARAMS,
        render_template_as_native_obj=True,
        default_args={"retries": 0},
    )


with _dag("azerion_ui"):

    @task
    def mapped_prompts(params=None) -> list[str]:
        return list(params["mapped_prompts"])

    @task
    def not_an_azerion_task() -> str:
        return "no images here"

    (ImageGenerationOperator(task_id="generate", max_active_requests=8, **TEMPLATED) >> not_an_azerion_task())
    ImageGenerationOperator.partial(
        task_id="generate_mapped",
        output_path="{{ params.output_path }}",
        extra_params="{{ params.extra_params }}",
        max_active_requests=1,
    ).expand(prompt=mapped_prompts())


with _dag("azerion_ui_one_task"):
    # One request at a time, so a scripted emulator fault hits a known prompt.
    ImageGenerationOperator(task_id="generate", max_active_requests=1, **TEMPLATED)


with _dag("azerion_ui_never_ran"):

    @task
    def fails() -> None:
        raise RuntimeError("upstream failure on purpose")

    upstream = fails()
    upstream >> ImageGenerationOperator(
        task_id="templated",
        prompt="{{ params.prompts }}",
        output_path="{{ params.output_path }}",
    )
    upstream >> ImageGenerationOperator(
        task_id="static",
        prompt="a prompt never sent",
        output_path=STATIC_OUTPUT_PATH,
    )


with _dag("azerion_ui_no_images"):

    @task
    def just_python() -> int:
        return 1

    just_python()


with _dag("azerion_ui_bulk"):
    # Many prompts at once: the 100-image run the browser benchmark opens.
    ImageGenerationOperator(task_id="generate", max_active_requests=8, **TEMPLATED)
