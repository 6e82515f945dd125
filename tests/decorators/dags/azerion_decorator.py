"""DAGs the ``@task.azerion_images`` tests run with ``dag.test()``.

Each DAG uses the decorator one way. The output folder comes from the run's ``conf``
(``params.output_path``), which also exercises the decorator's templated operator arguments.
Every decorated task is ``generate``; the functions have names of their own for type checkers.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

PARAMS = {
    "output_path": "file:///tmp/azerion-test-output-unset/",
    "style": "flat illustration",
    "model": "stable-image-core-1.1",
    "returned": "unset",
}
SMALL = {"size": "64x64"}
OUTPUT = "{{ params.output_path }}"
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, params=PARAMS, default_args={"retries": 0})


with _dag("azerion_decorator_str"):

    @task.azerion_images(task_id="generate", output_path=OUTPUT, extra_params=SMALL)
    def one_prompt(subject: str) -> str:
        return f"a watercolour of {subject}"

    one_prompt("a red fox in fresh snow")

with _dag("azerion_decorator_list"):

    @task
    def subjects() -> list[str]:
        return ["a lighthouse at dusk", "a bowl of ramen", "an isometric arcade cabinet"]

    @task.azerion_images(task_id="generate", output_path=OUTPUT, extra_params=SMALL, max_active_requests=2)
    def prompt_list(names: list[str], params=None) -> list[str]:
        # Upstream XCom and a context key in one callable.
        return [f"{name}, {params['style']}" for name in names]

    prompt_list(subjects())

with _dag("azerion_decorator_mapped"):

    @task.azerion_images(task_id="generate", output_path=OUTPUT, extra_params=SMALL)
    def portrait(animal: str) -> str:
        return f"a portrait of a {animal}"

    portrait.expand(animal=["fox", "owl", "whale"])

with _dag("azerion_decorator_bad_return"):

    @task.azerion_images(task_id="generate", output_path=OUTPUT, extra_params=SMALL)
    def bad_return(params=None):
        return params["returned"]

    bad_return()

with _dag("azerion_decorator_templated"):

    @task.azerion_images(
        task_id="generate",
        output_path="{{ params.output_path }}{{ dag_run.run_after | ds }}/",
        model="{{ params.model }}",
        extra_params=SMALL,
    )
    def dated() -> str:
        return "a red fox in fresh snow"

    dated()
