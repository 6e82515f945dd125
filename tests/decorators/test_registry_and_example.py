"""``task.azerion_images`` comes from the provider registry; the example DAG parses light and runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_provider_azerion.decorators import azerion_images_task
from airflow_provider_azerion.get_provider_info import get_provider_info
from tests.examples.conftest import EXAMPLE_DAGS

EXAMPLE = EXAMPLE_DAGS / "azerion_taskflow.py"
FACTORY = "airflow_provider_azerion.decorators.azerion_images.azerion_images_task"
#: What a DAG file must not pull in by importing the decorator (hook, HTTP, storage, images, servers).
HEAVY = [
    "airflow_provider_azerion.emulator",
    "airflow_provider_azerion.hooks.azerion",
    "airflow_provider_azerion.storage",
    "airflow_provider_azerion.batch",
    "requests",
    "PIL",
    "uvicorn",
    "fastapi",
    "s3fs",
    "boto3",
]


def test_provider_info_declares_the_decorator_as_airflows_providers_do():
    assert get_provider_info()["task-decorators"] == [{"class-name": FACTORY, "name": "azerion_images"}]


def test_task_azerion_images_resolves_through_the_provider_registry():
    from airflow.sdk import task
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    assert ProvidersManagerTaskRuntime().taskflow_decorators["azerion_images"] is azerion_images_task
    assert task.azerion_images is azerion_images_task


def _fresh_interpreter(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_fresh_interpreter_finds_task_azerion_images_without_loading_heavy_modules():
    code = (
        "import json, sys; import airflow.sdk; before = set(sys.modules); "
        "from airflow.sdk import task; decorator = task.azerion_images; "
        f"assert decorator.__module__ + '.' + decorator.__name__ == {FACTORY!r}; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules and m not in before]))"
    )
    assert _fresh_interpreter(code) == []


def test_the_example_dag_file_parses_without_loading_heavy_modules():
    code = (
        "import json, runpy, sys; import airflow.sdk; before = set(sys.modules); "
        f"runpy.run_path({str(EXAMPLE)!r}); "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules and m not in before]))"
    )
    assert _fresh_interpreter(code) == []


@pytest.mark.azerion_emulator(max_side=64)
def test_the_example_dag_draws_two_images_per_theme_in_mapped_tasks(run_dag, emulator, tmp_path, monkeypatch):
    output_base = tmp_path / "images"
    output_base.mkdir()
    monkeypatch.setenv("AIRFLOW_VAR_AZERION_OUTPUT_BASE", output_base.as_uri())

    result = run_dag(EXAMPLE, "azerion_taskflow", conf={"themes": ["autumn", "winter", "spring"]})

    assert result.state == "success"
    assert result.states() == {
        ("pick_themes", -1): "success",
        **{("banners", i): "success" for i in range(3)},
        ("count_images", -1): "success",
    }
    assert result.xcom("count_images") == 6
    (run_folder,) = (output_base / "azerion_taskflow").iterdir()
    for map_index, theme in enumerate(["autumn", "winter", "spring"]):
        folder = run_folder / f"banners-{map_index}"
        prompts = [json.loads((folder / f"{i:04d}-0.json").read_text())["prompt"] for i in range(2)]
        assert prompts == [
            f"a web banner about {theme}, flat illustration",
            f"a poster about {theme}, watercolour",
        ]
    assert len(emulator.requests_to("/images/generations")) == 6
