"""The api-server's Images tab on the cluster: a run's page lists the thumbnails of its S3 images."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest

from tests.cluster.conftest import BUCKET
from tests.ui.conftest import parse_page

DAG_ID = "azerion_s3_upload"
PROMPTS = ["a lighthouse in a bucket", "an owl in a bucket", "a fox in a bucket"]


@pytest.mark.timeout(600)
def test_the_run_page_lists_the_thumbnails_of_the_images_in_s3(cluster):
    from PIL import Image

    cluster.emulator(reset=True, latency=0)
    conf = {"bucket": BUCKET, "prefix": "tab", "aws_conn_id": "aws_default", "prompts": PROMPTS}
    run_id = cluster.trigger(DAG_ID, conf)
    assert cluster.wait_for_run(DAG_ID, run_id) == "success"

    response = cluster.get(f"/azerion/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/images")
    page = parse_page(response.text)
    thumbnail = cluster.get(page.imgs[0]["src"])

    assert response.status_code == 200
    assert sorted(img["alt"] for img in page.imgs) == sorted(PROMPTS)
    assert page.counts("images") == [len(PROMPTS)]
    assert thumbnail.status_code == 200
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        decoded.load()
        assert decoded.size[0] > 0
