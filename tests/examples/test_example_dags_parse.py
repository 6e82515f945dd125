"""The example DAG files parse cleanly, cheaply, and say what their docs promise.

Airflow parses DAG files every few seconds: an import error hides the DAG, a heavy import slows
every parse. These run on every supported Airflow version (``make test`` covers 3.2 and 3.3).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from tests.examples.conftest import EXAMPLE_DAGS

EXAMPLE_DAG_IDS = {
    "azerion_daily_content.py": "azerion_daily_content",
    "azerion_mapped_prompts.py": "azerion_mapped_prompts",
    "azerion_s3_upload.py": "azerion_s3_upload",
    "azerion_hook_in_task.py": "azerion_hook_in_task",
    "azerion_taskflow.py": "azerion_taskflow",
    "azerion_review_publish.py": "azerion_review_publish",
}
#: Modules a DAG file must not pull in at parse time (the hook, HTTP, images, servers, S3).
HEAVY = [
    "airflow_provider_azerion.emulator",
    "airflow_provider_azerion.hooks.azerion",
    "PIL",
    "uvicorn",
    "fastapi",
    "s3fs",
    "boto3",
]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(EXAMPLE_DAGS), bundle_path=EXAMPLE_DAGS, bundle_name="example-dags")


def test_every_example_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == sorted(EXAMPLE_DAG_IDS.values())
    assert sorted(p.name for p in EXAMPLE_DAGS.glob("*.py")) == sorted(EXAMPLE_DAG_IDS)


#: Run in a fresh interpreter: imports Airflow's SDK once, then parses each DAG file in a forked
#: child (so one file's imports cannot hide another's) and prints what each one added.
_IMPORT_PROBE = """
import json, os, runpy, sys
import airflow.sdk
heavy, files = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for path in files:
    read, write = os.pipe()
    if os.fork() == 0:
        before = set(sys.modules)
        runpy.run_path(path)
        added = [m for m in heavy if m in sys.modules and m not in before]
        os.write(write, json.dumps(added).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        print(json.dumps({os.path.basename(path): json.loads(pipe.read() or '["<parse failed>"]')}))
    os.wait()
"""


def test_dag_files_import_no_hook_http_image_or_storage_stack():
    files = [str(EXAMPLE_DAGS / name) for name in sorted(EXAMPLE_DAG_IDS)]
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, json.dumps(HEAVY), json.dumps(files)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert out.returncode == 0, out.stderr[-2000:]
    added = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            added.update(json.loads(line))
    assert added == {name: [] for name in EXAMPLE_DAG_IDS}


def test_the_daily_dag_runs_at_six_in_amsterdam_without_catchup(dagbag):
    dag = dagbag.dags["azerion_daily_content"]

    assert dag.catchup is False
    assert str(dag.timezone.name) == "Europe/Amsterdam"
    assert dag.timetable.expression == "0 6 * * *"


def test_the_daily_task_retries_with_backoff_alerts_and_publishes_an_asset(dagbag):
    task = dagbag.dags["azerion_daily_content"].get_task("generate")

    assert task.retries == 3
    assert task.retry_delay == timedelta(minutes=2)
    assert task.retry_exponential_backoff == 2.0, "a multiplier: True (== 1) means no backoff"
    assert task.max_retry_delay == timedelta(minutes=30)
    assert [callback.__name__ for callback in task.on_failure_callback] == ["alert_on_failure"]
    assert [outlet.uri for outlet in task.outlets] == ["x-azerion://daily-content/images"]


def test_the_retry_policy_is_set_exactly_where_airflow_supports_it(dagbag):
    from airflow_provider_azerion.compat import airflow_version

    task = dagbag.dags["azerion_daily_content"].get_task("generate")
    supported = tuple(int(part) for part in airflow_version().split(".")[:2]) >= (3, 3)

    if supported:
        assert type(task.retry_policy).__name__ == "AzerionRetryPolicy"
    else:
        assert getattr(task, "retry_policy", None) is None


@pytest.mark.parametrize("dag_id", ["azerion_daily_content", "azerion_mapped_prompts"])
def test_the_output_base_is_a_run_time_template_not_a_parse_time_lookup(dagbag, dag_id):
    task = dagbag.dags[dag_id].get_task("generate")
    output_path = task.partial_kwargs["output_path"] if hasattr(task, "partial_kwargs") else task.output_path

    assert output_path == "{{ var.value.get('azerion_output_base', 'file:///tmp/azerion-images') }}"
