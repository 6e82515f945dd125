"""``azerion_hook_in_task`` under ``dag.test()``: the hook used directly inside a ``@task``."""

from __future__ import annotations

import hashlib

import pytest

from airflow_provider_azerion.emulator.validation import MODELS
from tests.examples.conftest import EXAMPLE_DAGS, SECRET_KEY

DAG_FILE = EXAMPLE_DAGS / "azerion_hook_in_task.py"
DAG_ID = "azerion_hook_in_task"

pytestmark = pytest.mark.azerion_emulator(max_side=64)


def test_the_task_lists_models_generates_once_and_returns_only_metadata(run_dag, emulator, output_base):
    result = run_dag(DAG_FILE, DAG_ID, conf={"prompt": "a tiny robot"})

    assert result.state == "success"
    meta = result.xcom("generate_with_hook")
    (image,) = (output_base / DAG_ID).iterdir()
    assert meta["uri"] == image.as_uri()
    assert image.suffix == ".jpg"
    assert meta["bytes"] == image.stat().st_size
    assert meta["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert meta["media_type"] == "image/jpeg"
    assert meta["models_available"] == len(MODELS)
    assert [r.prompt for r in emulator.requests_to("/images/generations")] == ["a tiny robot"]
    raw = result.xcom_raw("generate_with_hook")
    assert len(raw) < 600
    assert SECRET_KEY not in raw


def test_an_unknown_model_fails_before_any_paid_call(run_dag, emulator, output_base):
    result = run_dag(DAG_FILE, DAG_ID, conf={"model": "no-such-model"})

    assert result.state == "failed"
    ti = result.ti("generate_with_hook")
    assert ti.try_number == 1, "a missing model is not worth a retry"
    assert len(emulator.requests_to("/models")) == 1
    assert emulator.requests_to("/images/generations") == []


def test_a_manual_run_without_a_logical_date_names_the_image_by_run_after(run_dag, emulator, output_base):
    result = run_dag(DAG_FILE, DAG_ID, conf={"prompt": "a tiny robot"}, manual=True)

    assert result.state == "success"
    assert result.dag_run.logical_date is None
    (image,) = (output_base / DAG_ID).iterdir()
    assert image.name == result.dag_run.run_after.strftime("%Y%m%dT%H%M%S") + ".jpg"
