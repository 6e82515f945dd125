"""Downstream tasks map over the images of a batch with ``.expand``, whatever its size (dag.test())."""

from __future__ import annotations

import pytest

from airflow_provider_azerion.outputs import XCOM_LIMIT

DAG_FILE = "azerion_scale.py"
DAG_ID = "azerion_scale_mapping"

pytestmark = pytest.mark.azerion_emulator(max_side=16)


@pytest.mark.timeout(240)
def test_mapped_tasks_cover_a_large_batch_chunk_by_chunk_and_a_small_one_image_by_image(
    run_dag, emulator, output_dir
):
    result = run_dag(DAG_FILE, DAG_ID, conf={"prompts": 250, "output_path": output_dir.as_uri() + "/"})

    assert result.state == "success"
    large = result.xcom("generate")
    assert len(result.xcom_raw("generate")) <= XCOM_LIMIT
    assert "images" not in large, "250 image entries do not fit: the chunks stand in for them"
    checked = result.xcom_rows("check_chunk")
    assert sorted(checked) == [0, 1, 2], "one mapped task instance per chunk of 100"
    assert [index for map_index in sorted(checked) for index in checked[map_index]] == list(range(250))

    described = result.xcom_rows("describe")
    small = result.xcom("generate_small")
    assert sorted(described) == [0, 1], "one mapped task instance per image"
    assert [described[i] for i in (0, 1)] == [
        f"{image['prompt_index']}: {image['prompt']} -> {image['uri']}" for image in small["images"]
    ]
