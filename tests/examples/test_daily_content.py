"""``azerion_daily_content`` under ``dag.test()``, against the emulator over HTTP."""

from __future__ import annotations

import json

import pendulum
import pytest

from tests.examples.conftest import EXAMPLE_DAGS, SECRET_KEY

DAG_FILE = EXAMPLE_DAGS / "azerion_daily_content.py"
DAG_ID = "azerion_daily_content"
ASSET_URI = "x-azerion://daily-content/images"
# 06:00 in Amsterdam is 04:00 UTC: ds is still the same calendar day.
LOGICAL_DATE = pendulum.datetime(2025, 6, 1, 6, tz="Europe/Amsterdam")

pytestmark = pytest.mark.azerion_emulator(max_side=64)


def run_folder(output_base, run_id: str):
    (folder,) = (output_base / DAG_ID).iterdir()
    assert folder.name == run_id.replace(":", "_").replace("+", "_")
    return folder / "generate"


def test_a_run_writes_one_dated_banner_per_prompt_under_the_variable_base(run_dag, emulator, output_base):
    from PIL import Image

    result = run_dag(DAG_FILE, DAG_ID, logical_date=LOGICAL_DATE)

    assert result.state == "success"
    folder = run_folder(output_base, result.run_id)
    images = sorted(folder.glob("*.jpg"))
    assert [p.name for p in images] == [f"{i:04d}-0.jpg" for i in range(4)]
    for image in images:
        sidecar = json.loads(image.with_suffix(".json").read_text())
        assert "2025-06-01" in sidecar["prompt"]
        assert sidecar["params"] == {
            "model": "stable-image-core-1.1",
            "response_format": "b64_json",
            "style": "vivid",
            "aspect_ratio": "16:9",
        }
        with Image.open(image) as decoded:
            width, height = decoded.size
        assert width > height, "16:9 was asked for"
    assert SECRET_KEY not in "".join(p.read_text() for p in folder.glob("*.json"))


def test_the_asset_event_lists_the_images_of_the_run(run_dag, emulator, output_base):
    # A date of its own: asset events of an earlier run with the same run id stay in the DB.
    result = run_dag(DAG_FILE, DAG_ID, logical_date=LOGICAL_DATE.add(days=1))

    xcom = result.xcom("generate")
    uris = [entry["uri"] for entry in xcom["images"]]
    assert len(uris) == 4
    assert result.asset_events(ASSET_URI) == [
        {"folder_uri": xcom["folder_uri"], "manifest_uri": xcom["manifest_uri"], "uris": uris, "count": 4}
    ]


def test_a_rejected_key_fails_the_task_at_once_and_raises_the_alert(run_dag, emulator, output_base, capfd):
    emulator.api_key = "another-key"  # the connection still sends SECRET_KEY: a 401

    result = run_dag(DAG_FILE, DAG_ID, logical_date=LOGICAL_DATE)

    assert result.state == "failed"
    ti = result.ti("generate")
    assert (str(ti.state), ti.try_number) == ("failed", 1), "no retry is spent on a bad key"
    out = capfd.readouterr()
    logs = out.out + out.err
    assert f"AZERION ALERT: task generate of DAG {DAG_ID} failed in run {result.run_id} (try 1)" in logs
    assert "AzerionAuthenticationError" in logs or "401" in logs
    assert SECRET_KEY not in logs
    assert list(output_base.rglob("*.jpg")) == []


def test_a_manual_run_without_a_logical_date_dates_its_prompts_by_run_after(run_dag, emulator, output_base):
    # Airflow 3's Trigger button makes a run without a logical date: {{ ds }} would be undefined.
    result = run_dag(DAG_FILE, DAG_ID, manual=True)

    assert result.state == "success"
    assert result.dag_run.logical_date is None
    day = result.dag_run.run_after.strftime("%Y-%m-%d")
    prompts = [record.prompt for record in emulator.requests_to("/images/generations")]
    assert len(prompts) == 4
    assert all(day in prompt for prompt in prompts)
