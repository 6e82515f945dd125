"""Daily content images: a handful of dated prompts, generated every morning, stored as files.

What it shows:

- a daily schedule in a real time zone (06:00 Europe/Amsterdam, daylight saving included) with
  ``catchup=False``, so enabling the DAG does not back-fill months of paid generations;
- prompts templated with ``{{ dag_run.run_after | ds }}``, so every run asks for that day's images,
  manual runs too (a run triggered without a logical date has no ``{{ ds }}`` on Airflow 3);
- the output folder read from the Airflow Variable ``azerion_output_base`` *when the task runs*
  (a template, not a parse-time ``Variable.get``), defaulting to ``file:///tmp/azerion-images``.
  Set it in the UI, with ``airflow variables set azerion_output_base s3://bucket/images``, or
  with the environment variable ``AIRFLOW_VAR_AZERION_OUTPUT_BASE``;
- task retries with exponential backoff, an alerting hook (``on_failure_callback``) and, on
  Airflow 3.3+, ``AzerionRetryPolicy`` so that errors no retry can fix do not wait for retries;
- an Asset outlet: downstream DAGs can ``schedule=[DAILY_CONTENT]`` and read the image URIs
  from the asset event's ``extra["uris"]`` (while they fit; ``extra["manifest_uri"]`` always).

Images land in ``{azerion_output_base}/azerion_daily_content/{run_id}/generate/``, each with a
JSON sidecar (prompt, parameters, usage, sha256).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

try:
    # Airflow 3.3+ only: the module raises ImportError on older versions, where the fail-fast
    # exception classes (AirflowFailException) already skip retries for unfixable errors.
    from airflow_provider_azerion.retry_policy import AzerionRetryPolicy
except ImportError:
    RETRY_POLICY: dict = {}
else:
    RETRY_POLICY = {"retry_policy": AzerionRetryPolicy()}

#: Where images go unless the Variable ``azerion_output_base`` says otherwise.
DEFAULT_OUTPUT_BASE = "file:///tmp/azerion-images"
OUTPUT_BASE = "{{ var.value.get('azerion_output_base', '" + DEFAULT_OUTPUT_BASE + "') }}"

#: Published after each successful run; the event's extra lists the image URIs. The "x-" scheme
#: marks a user-defined URI: Airflow then skips looking up a provider to normalise it, a lookup
#: that would load every provider's asset handlers (boto3 included) on each parse of this file.
DAILY_CONTENT = Asset(name="azerion_daily_content", uri="x-azerion://daily-content/images")

#: The run's day. Not ``{{ ds }}``: on Airflow 3 a run triggered without a logical date (the UI's
#: Trigger button, by default) has no ``ds``, while every run has ``run_after``.
DAY = "{{ dag_run.run_after | ds }}"

PROMPTS = [
    f"Hero banner for a casual puzzle game, seasonal theme for {DAY}, bright colours, no text",
    f"Flat illustration of a city skyline at sunrise on {DAY}, soft pastel palette",
    f"Cosy reading corner with a steaming mug, autumn light, editorial photo for {DAY}",
    f"Abstract gradient background for a newsletter header dated {DAY}",
]


def alert_on_failure(context) -> None:
    """Alerting hook point: runs once a task has failed for good (retries exhausted or fail-fast).

    Replace or extend the log line with your channel of choice, for example
    ``on_failure_callback=[alert_on_failure, SlackNotifier(slack_conn_id="slack", text="...")]``
    (``apache-airflow-providers-slack``), ``SmtpNotifier`` (``apache-airflow-providers-smtp``) or
    a PagerDuty/Opsgenie notifier. Never put the exception's full payload in a public channel
    without reading it: it may quote the prompt.
    """
    ti = context["ti"]
    # The task's own logger: its lines land in the task log the UI shows, on every executor.
    context["task"].log.error(
        "AZERION ALERT: task %s of DAG %s failed in run %s (try %s): %s",
        ti.task_id,
        ti.dag_id,
        ti.run_id,
        ti.try_number,
        context.get("exception"),
    )


with DAG(
    dag_id="azerion_daily_content",
    description="Generate the day's content images with the Azerion Intelligence API",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "content-platform",
        # The hook already retries 429s, 5xx and connection failures within one try, for a
        # minute or so. Task retries cover longer outages: 2, 4, 8 minutes, capped at 30.
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        # A multiplier since Airflow 3.2: True (== 1) would keep the delay constant.
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": alert_on_failure,
        **RETRY_POLICY,
    },
    tags=["azerion", "example"],
):
    ImageGenerationOperator(
        task_id="generate",
        prompt=PROMPTS,
        output_path=OUTPUT_BASE,
        style="vivid",
        extra_params={"aspect_ratio": "16:9"},
        max_active_requests=4,
        outlets=[DAILY_CONTENT],
    )
