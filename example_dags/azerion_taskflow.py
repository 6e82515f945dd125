"""TaskFlow: ``@task.azerion_images`` turns a function that writes prompts into an image task.

What it shows:

- ``@task.azerion_images(...)`` takes ``ImageGenerationOperator``'s arguments (all but ``prompt``);
  the decorated function returns the prompt(s): one str, or a list of str;
- ``.expand(theme=...)`` maps the function over an upstream task's list like any ``@task``: one
  task instance per theme, each generating that theme's prompts, retried and resumed on its own;
- a downstream ``@task`` reads the mapped XCom: for each theme, the operator's result dict.

Output: ``{azerion_output_base}/azerion_taskflow/{run_id}/banners-{map_index}/`` per theme. The
Variable ``azerion_output_base`` defaults to ``file:///tmp/azerion-images``; ``file://`` only works
when all workers share that disk, otherwise point it at object storage.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

OUTPUT_BASE = "{{ var.value.get('azerion_output_base', 'file:///tmp/azerion-images') }}"

with DAG(
    dag_id="azerion_taskflow",
    description="A TaskFlow function writes the prompts, @task.azerion_images draws them",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    params={
        "themes": Param(
            ["autumn", "winter"],
            type="array",
            minItems=1,
            description="One task instance per theme, two images each.",
        ),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["azerion", "example"],
):

    @task
    def pick_themes(params=None) -> list[str]:
        """The themes to draw; the list's length decides how many task instances run."""
        return list(params["themes"])

    @task.azerion_images(output_path=OUTPUT_BASE, max_active_requests=2)
    def banners(theme: str) -> list[str]:
        """Two prompts per theme; the task generates and stores an image for each."""
        return [f"a web banner about {theme}, flat illustration", f"a poster about {theme}, watercolour"]

    @task
    def count_images(results) -> int:
        """Add up the images of every theme (``count`` of each mapped task's result dict)."""
        return sum(result["count"] for result in results[:])

    count_images(banners.expand(theme=pick_themes()))
