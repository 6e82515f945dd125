"""The Images tab of a task that wrote to ``gs://`` or ``abfs://``: the API app reads the bucket or
container itself, through the task's rendered ``output_conn_id``, as it does for S3
(``tests/ui/test_s3.py``). The DAG runs under ``dag.test()``; the tab is Airflow's API app in this
process (``tests/ui/conftest.py``)."""

from __future__ import annotations

import io

import pytest

from tests.stores import checks
from tests.ui.conftest import DAG_FILE, api, parse_page, ti_url  # noqa: F401  (api: a fixture)

PROMPTS = ["a fox on a cloud", "an owl on a cloud"]


@pytest.fixture(params=["gs", "abfs"])
def store(request) -> checks.Store:
    if request.param == "gs":
        pytest.importorskip("airflow.providers.google", reason="the gcs extra is not installed")
        gcs = request.getfixturevalue("gcs")
        return checks.Store("gs", gcs.bucket, gcs.conn_id, gcs.objects, gcs.cold)
    pytest.importorskip("airflow.providers.microsoft.azure", reason="the azure extra is not installed")
    blob = request.getfixturevalue("azure_blob")
    return checks.Store("abfs", blob.container, blob.conn_id, blob.objects, blob.cold)


def test_the_tab_reads_the_store_through_the_tasks_output_connection(api, run_dag, emulator, store):  # noqa: F811
    from PIL import Image

    conf = {"prompts": PROMPTS, "output_path": store.url("images/"), "output_conn_id": store.conn_id}
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=conf)
    stored = store.objects("images/")
    first_image = next(key for key in stored if key.endswith("0000-0.jpg"))
    store.cold()

    response = api.get(ti_url(result))
    page = parse_page(response.text)
    thumbnail = api.get(page.imgs[0]["src"])
    full = api.get(ti_url(result, rest="images/0000-0.jpg"))
    sidecar = api.get(ti_url(result, rest="sidecars/0001-0.json"))

    assert result.state == "success"
    assert response.status_code == 200
    assert page.data_values("image") == ["0000-0.jpg", "0001-0.jpg"]
    assert [img["alt"] for img in page.imgs] == PROMPTS
    assert store.url("images/azerion_ui_one_task/") in page.text
    assert store.conn_id not in response.text
    assert thumbnail.status_code == 200
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        decoded.load()
        assert min(decoded.size) > 0
    assert full.content == stored[first_image]
    assert sidecar.json()["prompt"] == PROMPTS[1]
