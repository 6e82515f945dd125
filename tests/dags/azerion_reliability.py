"""DAGs of the reliability suite (``tests/reliability``): an operator that may retry, fed by ``conf``.

Prompts, output folder and API parameters come from the run's ``conf`` through ``params``, as in
``azerion_image_generation.py``; what differs is the task's own retries, which the fault and
load tests rely on to resume after failures the hook does not retry.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

PARAMS = {
    "prompts": ["a lighthouse in a storm"],
    "output_path": "file:///tmp/azerion-reliability-output-unset/",
    "extra_params": {"size": "32x32"},
}
TEMPLATED = {
    "prompt": "{{ params.prompts }}",
    "output_path": "{{ params.output_path }}",
    "extra_params": "{{ params.extra_params }}",
}
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
NO_DELAY = datetime.timedelta(0)


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, params=PARAMS, render_template_as_native_obj=True)


with _dag("azerion_reliability"):
    # One request at a time, so a scripted fault hits a known prompt; two task retries.
    ImageGenerationOperator(
        task_id="generate", max_active_requests=1, retries=2, retry_delay=NO_DELAY, **TEMPLATED
    )

with _dag("azerion_reliability_load"):
    # Many prompts in one task: the hook retries status faults, the task's retries resume the rest.
    ImageGenerationOperator(
        task_id="generate", max_active_requests=8, retries=8, retry_delay=NO_DELAY, **TEMPLATED
    )
