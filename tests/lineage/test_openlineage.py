"""OpenLineage: the output root is the task's one output dataset, named by OpenLineage's conventions.

The end-to-end test runs ``airflow dags test`` in a child process with the OpenLineage provider's
file transport configured, so the listener is loaded as in a deployment (it is set up once per
process, from the configuration at that moment), and reads the emitted events from the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_azerion.lineage import dataset_name, output_lineage
from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

pytest.importorskip("airflow.providers.openlineage", reason="the openlineage extra is not installed")

DAG_ID = "azerion_lineage"


@pytest.mark.parametrize(
    ("uri", "namespace", "name"),
    [
        ("s3://bucket/images/", "s3://bucket", "images"),
        ("s3://bucket/a/b", "s3://bucket", "a/b"),
        ("s3://bucket", "s3://bucket", "/"),
        ("s3a://bucket/images", "s3://bucket", "images"),
        ("gs://bucket/images/", "gs://bucket", "images"),
        ("gcs://bucket/images", "gs://bucket", "images"),
        ("file:///data/images/", "file", "/data/images"),
        ("file:///", "file", "/"),
        ("abfs://container/images", "abfs://container", "images"),
    ],
)
def test_locations_are_named_by_openlineage_conventions(uri, namespace, name):
    assert dataset_name(uri) == (namespace, name)


@pytest.mark.parametrize("uri", ["s3://bucket/images/daily", "file:///data/images"])
def test_names_agree_with_the_providers_own_lineage_for_the_same_location(uri):
    """The Amazon provider names S3 objects, common-io names local files: the same way as here."""
    from airflow.providers.amazon.aws.assets.s3 import convert_asset_to_openlineage as s3_lineage
    from airflow.providers.common.io.assets.file import convert_asset_to_openlineage as file_lineage
    from airflow.sdk import Asset

    convert = s3_lineage if uri.startswith("s3://") else file_lineage
    theirs = convert(Asset(uri=uri), None)

    assert dataset_name(uri) == (theirs.namespace, theirs.name)


def test_the_dataset_is_the_output_root_and_the_same_for_every_run():
    def lineage():
        operator = ImageGenerationOperator(
            task_id="generate", prompt="a fox", output_path="s3://bucket/images/", output_conn_id="aws_x"
        )
        return operator.get_openlineage_facets_on_complete(task_instance=None)

    first, second = lineage(), lineage()

    assert [(d.namespace, d.name) for d in first.outputs] == [("s3://bucket", "images")]
    assert first.inputs == []
    assert [(d.namespace, d.name) for d in second.outputs] == [("s3://bucket", "images")]


def test_an_object_storage_path_output_is_named_without_its_connection(tmp_path):
    lineage = output_lineage(ObjectStoragePath(tmp_path.as_uri(), conn_id="some_fs"))

    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", str(tmp_path))]


def test_without_openlineage_the_method_returns_none(monkeypatch):
    # What an installation without the extra sees: the provider's modules cannot be imported.
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    operator = ImageGenerationOperator(task_id="generate", prompt="a fox", output_path="file:///data/images/")

    assert operator.get_openlineage_facets_on_complete(task_instance=None) is None


@pytest.mark.azerion_emulator(max_side=16)
@pytest.mark.timeout(240)
def test_the_complete_event_of_a_run_names_the_output_root(airflow_db, azerion_emulator, tmp_path):
    events_file = tmp_path / "openlineage.jsonl"
    output = tmp_path / "images"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW_CONN_AZERION_DEFAULT": json.dumps(
            {"conn_type": "azerion", "host": azerion_emulator.base_url, "password": azerion_emulator.api_key}
        ),
    }
    env.pop("AZERION_API_KEY", None)

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "dags",
            "test",
            DAG_ID,
            "-c",
            json.dumps({"output_path": output.as_uri()}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    (complete,) = [
        e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"{DAG_ID}.generate"
    ]
    (dataset,) = complete["outputs"]
    assert (dataset["namespace"], dataset["name"]) == ("file", str(output))
    statistics = dataset["outputFacets"]["outputStatistics"]
    assert (statistics["rowCount"], statistics["fileCount"]) == (2, 5)
    stored = sorted(output.rglob("*.jpg"))
    assert statistics["size"] == sum(path.stat().st_size for path in stored)
    assert len(azerion_emulator.requests_to("/images/generations")) == 2
