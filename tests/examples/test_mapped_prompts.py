"""``azerion_mapped_prompts`` under ``dag.test()``: fan-out per prompt, then a manifest.

One run with the DAG's default params serves every test here (a mapped run costs about 25 s on
Airflow 3.2, where each in-process task sets up its own Execution API client). The run's
``conf`` handling is covered by the LocalExecutor test, which passes its own subjects.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import DagRunResult, load_dag
from tests.examples.conftest import EXAMPLE_DAGS, connection_json

DAG_ID = "azerion_mapped_prompts"
DEFAULT_PROMPTS = [
    "a watercolour illustration of a red fox in fresh snow",
    "a watercolour illustration of a lighthouse at dusk",
    "a watercolour illustration of a bowl of ramen, top view",
]


@pytest.fixture(scope="module")
def mapped_run(airflow_db, tmp_path_factory):
    """The DAG run once with its defaults against an emulator; its result, folder and emulator."""
    from airflow_provider_azerion.emulator import EmulatorServer

    output_base = tmp_path_factory.mktemp("mapped") / "images"
    output_base.mkdir()
    with EmulatorServer(max_side=64) as emulator, pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AZERION_DEFAULT", connection_json(emulator.base_url, emulator.api_key)
        )
        monkeypatch.setenv("AIRFLOW_VAR_AZERION_OUTPUT_BASE", output_base.as_uri())
        monkeypatch.delenv("AZERION_API_KEY", raising=False)
        dag = load_dag(EXAMPLE_DAGS / "azerion_mapped_prompts.py", DAG_ID)
        # A manual run without a logical date, as the UI's Trigger button makes by default.
        result = DagRunResult(dag=dag, dag_run=dag.test(logical_date=None))
        prompts = [record.prompt for record in emulator.requests_to("/images/generations")]
    (run_folder,) = (output_base / DAG_ID).iterdir()
    return result, run_folder, prompts


def test_each_prompt_gets_its_own_task_instance_and_folder(mapped_run):
    result, run_folder, requested = mapped_run

    assert result.dag_run.logical_date is None
    assert result.states() == {
        ("build_prompts", -1): "success",
        **{("generate", i): "success" for i in range(3)},
        ("write_manifest", -1): "success",
    }
    assert result.xcom("build_prompts") == DEFAULT_PROMPTS
    assert sorted(requested) == sorted(DEFAULT_PROMPTS), "one API call per prompt"
    for map_index, prompt in enumerate(DEFAULT_PROMPTS):
        sidecar = json.loads((run_folder / f"generate-{map_index}" / "0000-0.json").read_text())
        assert (sidecar["prompt"], sidecar["map_index"]) == (prompt, map_index)


def test_the_manifest_sits_next_to_the_images_and_lists_each_once(mapped_run):
    result, run_folder, _ = mapped_run

    manifest = run_folder / "manifest.jsonl"
    assert result.xcom("write_manifest") == {"manifest": manifest.as_uri(), "images": 3}
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [(entry["map_index"], entry["prompt"]) for entry in entries] == list(enumerate(DEFAULT_PROMPTS))


def test_manifest_entries_match_the_files_sidecars_and_mapped_xcom(mapped_run):
    result, run_folder, _ = mapped_run

    mapped_xcom = result.xcom_rows("generate")
    for line in (run_folder / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        image = run_folder / f"generate-{entry['map_index']}" / "0000-0.jpg"
        assert entry["uri"] == image.as_uri()
        assert entry["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
        assert entry["sha256"] == json.loads(image.with_suffix(".json").read_text())["sha256"]
        assert {k: v for k, v in entry.items() if k != "map_index"} == mapped_xcom[entry["map_index"]][
            "images"
        ][0]
