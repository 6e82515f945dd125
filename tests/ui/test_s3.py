"""The Images tab of a task that wrote to S3: the API server reads the bucket itself, through the
task's rendered ``output_conn_id`` (moto's S3 server on loopback, reached only through that
Airflow connection)."""

from __future__ import annotations

import io

import pytest

from tests.conftest import moto_bucket
from tests.ui.conftest import DAG_FILE, parse_page, ti_url

BUCKET = "azerion-ui-bucket"
CONN_ID = "aws_ui_test"


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on a free loopback port, an Airflow connection to it, and a bucket."""
    with moto_bucket(monkeypatch, CONN_ID, BUCKET) as client:
        yield client


def test_the_tab_reads_s3_through_the_tasks_output_connection(api, run_dag, emulator, s3):
    from PIL import Image

    conf = {
        "prompts": ["a fox in a bucket", "an owl in a bucket"],
        "output_path": f"s3://{BUCKET}/images/",
        "output_conn_id": CONN_ID,
    }
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=conf)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    first_image = next(key for key in keys if key.endswith("0000-0.jpg"))

    response = api.get(ti_url(result))
    page = parse_page(response.text)
    thumbnail = api.get(page.imgs[0]["src"])
    full = api.get(ti_url(result, rest="images/0000-0.jpg"))
    sidecar = api.get(ti_url(result, rest="sidecars/0001-0.json"))

    assert result.state == "success"
    assert page.data_values("image") == ["0000-0.jpg", "0001-0.jpg"]
    assert [img["alt"] for img in page.imgs] == conf["prompts"]
    assert f"s3://{BUCKET}/images/azerion_ui_one_task/" in page.text
    assert CONN_ID not in response.text
    assert thumbnail.status_code == 200
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        assert decoded.size == (64, 64)
    assert full.content == s3.get_object(Bucket=BUCKET, Key=first_image)["Body"].read()
    assert sidecar.json()["prompt"] == "an owl in a bucket"
