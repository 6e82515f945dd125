"""ImageGenerationOperator in real Airflow runs (``dag.test()``), against the emulator over HTTP.

The DAGs live in ``tests/dags/azerion_image_generation.py``; each test passes its prompts and
output folder through the run's ``conf``.
"""

from __future__ import annotations

import json
import re

import pendulum
import pytest

from tests.operators.conftest import SECRET_KEY
from tests.operators.helpers import (
    DAG_FILE,
    LOGICAL_DATE,
    generated_prompts,
    leftovers,
    run_conf,
    sha256_of,
    sidecar,
    task_folder,
)

BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{120,}")


def test_each_image_has_a_file_a_sidecar_and_an_xcom_entry_that_agree(run_dag, emulator, output_dir):
    prompts = ["a red fox in the snow", "a lighthouse at dusk"]
    result = run_dag(
        DAG_FILE,
        "azerion_images",
        logical_date=LOGICAL_DATE,
        conf=run_conf(output_dir, prompts, style="vivid"),
    )

    assert result.state == "success"
    folder = task_folder(output_dir, "azerion_images", result.run_id)
    assert sorted(p.name for p in folder.iterdir()) == [
        "0000-0.jpg",
        "0000-0.json",
        "0001-0.jpg",
        "0001-0.json",
        "manifest.jsonl",
    ]
    xcom = result.xcom("generate")["images"]
    assert [(entry["prompt_index"], entry["image_index"]) for entry in xcom] == [(0, 0), (1, 0)]
    request_ids = {r.prompt: r.request_id for r in emulator.requests_to("/images/generations")}
    for index, entry in enumerate(xcom):
        image, metadata = folder / f"{index:04d}-0.jpg", sidecar(folder, index)
        assert entry["uri"] == image.as_uri()
        assert entry["metadata_uri"] == (folder / f"{index:04d}-0.json").as_uri()
        assert sha256_of(image) == metadata["sha256"] == entry["sha256"]
        assert image.stat().st_size == metadata["bytes"] == entry["bytes"]
        assert image.read_bytes().startswith(b"\xff\xd8\xff")
        assert entry["media_type"] == metadata["media_type"] == "image/jpeg"
        assert entry["prompt"] == metadata["prompt"] == prompts[index]
        assert entry["revised_prompt"] == metadata["revised_prompt"]
        assert entry["created"] == metadata["created"]
        assert metadata["request_id"] == request_ids[prompts[index]]
    assert set(xcom[0]) == {
        "uri",
        "metadata_uri",
        "prompt_index",
        "image_index",
        "prompt",
        "revised_prompt",
        "model",
        "media_type",
        "bytes",
        "sha256",
        "width",
        "height",
        "created",
    }


def test_sidecar_and_xcom_record_the_pixel_size_of_the_image(run_dag, emulator, output_dir):
    from PIL import Image

    result = run_dag(DAG_FILE, "azerion_images", conf=run_conf(output_dir, ["a red fox"]))

    folder = task_folder(output_dir, "azerion_images", result.run_id)
    with Image.open(folder / "0000-0.jpg") as image:
        size = image.size
    assert size == (64, 64)  # the DAG asks for 64x64
    assert (sidecar(folder, 0)["width"], sidecar(folder, 0)["height"]) == size
    entry = result.xcom("generate")["images"][0]
    assert (entry["width"], entry["height"]) == size


def test_sidecar_records_request_usage_and_task_instance(run_dag, emulator, output_dir):
    result = run_dag(DAG_FILE, "azerion_images", conf=run_conf(output_dir, ["a red fox"], style="vivid"))

    metadata = sidecar(task_folder(output_dir, "azerion_images", result.run_id), 0)
    assert metadata["params"] == {
        "model": "stable-image-core-1.1",
        "response_format": "b64_json",
        "style": "vivid",
        "size": "64x64",
    }
    assert metadata["model"] == "stable-image-core-1.1"
    assert metadata["style"] == "vivid"
    assert pendulum.parse(metadata["created"]).tzinfo is not None
    assert metadata["usage"]["total_tokens"] == 0
    assert "input_tokens_details" in metadata["usage"]
    assert {k: metadata[k] for k in ("dag_id", "run_id", "task_id", "map_index", "try_number")} == {
        "dag_id": "azerion_images",
        "run_id": result.run_id,
        "task_id": "generate",
        "map_index": -1,
        "try_number": 1,
    }
    assert metadata["image"] == "0000-0.jpg"
    assert metadata["image_count"] == 1
    assert (metadata["prompt_index"], metadata["image_index"]) == (0, 0)


def test_run_ids_are_sanitised_into_one_folder_per_run(run_dag, emulator, output_dir):
    result = run_dag(
        DAG_FILE, "azerion_images", logical_date=LOGICAL_DATE, conf=run_conf(output_dir, ["a fox"])
    )

    assert ":" in result.run_id
    assert "+" in result.run_id
    (run_folder,) = (output_dir / "azerion_images").iterdir()
    assert run_folder.name == "manual__2024-05-01T06_30_00_00_00"


def test_xcom_is_small_and_holds_no_image_data_or_key(run_dag, emulator, output_dir):
    prompts = [f"a small test image number {i}" for i in range(3)]
    result = run_dag(DAG_FILE, "azerion_images", conf=run_conf(output_dir, prompts))

    raw = result.xcom_raw("generate")
    assert len(raw) < 700 * (len(prompts) + 1)
    assert not BASE64_RUN.search(raw)
    assert SECRET_KEY not in raw


def test_mapped_prompts_write_one_folder_per_map_index(run_dag, emulator, output_dir):
    result = run_dag(DAG_FILE, "azerion_images_mapped", conf=run_conf(output_dir, []))

    assert result.states() == {("generate", i): "success" for i in range(3)}
    xcoms = result.xcom_rows("generate")
    for map_index, prompt in enumerate(["a red fox", "a blue whale", "a green owl"]):
        folder = task_folder(output_dir, "azerion_images_mapped", result.run_id, map_index=map_index)
        assert folder.name == f"generate-{map_index}"
        assert sorted(p.name for p in folder.iterdir()) == ["0000-0.jpg", "0000-0.json", "manifest.jsonl"]
        assert sidecar(folder, 0)["prompt"] == prompt
        assert sidecar(folder, 0)["map_index"] == map_index
        assert [entry["uri"] for entry in xcoms[map_index]["images"]] == [(folder / "0000-0.jpg").as_uri()]


def test_prompts_can_come_from_an_upstream_task_as_list_or_str(run_dag, emulator, output_dir):
    result = run_dag(DAG_FILE, "azerion_images_from_xcom", conf=run_conf(output_dir, ["a cat", "a dog"]))

    assert result.state == "success"
    assert [entry["prompt"] for entry in result.xcom("from_list")["images"]] == ["a cat", "a dog"]
    assert [entry["prompt"] for entry in result.xcom("from_str")["images"]] == ["a cat"]
    assert (
        task_folder(output_dir, "azerion_images_from_xcom", result.run_id, "from_list") / "0001-0.jpg"
    ).exists()


def test_url_responses_are_downloaded_through_the_hook(run_dag, emulator, output_dir, capfd):
    emulator.max_side = 64  # seedream takes 512x512 at the least: keep the images small
    emulator.faults.script(["503"], endpoint="files")  # one retried download, logged with its URL
    conf = run_conf(
        output_dir, ["a koi pond"], model="bytedance-seedream-4", extra_params={"size": "512x512"}
    )
    result = run_dag(DAG_FILE, "azerion_images_url", conf=conf)

    assert result.state == "success"
    downloads = [r for r in emulator.requests if r.method == "GET" and "/ark-content-generation/" in r.path]
    assert len(downloads) == 2
    folder = task_folder(output_dir, "azerion_images_url", result.run_id)
    metadata = sidecar(folder, 0)
    assert metadata["params"]["response_format"] == "url"
    assert metadata["model"] == "bytedance-seedream-4"
    # Seedream reports usage in its own shape: the sidecar keeps it exactly as received.
    assert metadata["usage"]["generated_images"] == 1
    assert "input_tokens_details" not in metadata["usage"]
    assert metadata["revised_prompt"] is None  # the emulator revised nothing, so it sent none
    logs = "".join(capfd.readouterr())
    assert "ark-content-generation" in logs  # the capture saw the retry's log line (path only)
    assert "X-Tos" not in json.dumps(result.xcom("generate")) + json.dumps(metadata) + logs
    assert sha256_of(folder / metadata["image"]) == metadata["sha256"]


def test_n_images_per_prompt_are_all_stored(run_dag, emulator, output_dir):
    result = run_dag(DAG_FILE, "azerion_images_n2", conf=run_conf(output_dir, ["twin stars"]))

    folder = task_folder(output_dir, "azerion_images_n2", result.run_id)
    assert sorted(p.name for p in folder.iterdir()) == [
        "0000-0.jpg",
        "0000-0.json",
        "0000-1.jpg",
        "0000-1.json",
        "manifest.jsonl",
    ]
    assert [sidecar(folder, 0, j)["image_count"] for j in (0, 1)] == [2, 2]
    assert [(e["prompt_index"], e["image_index"]) for e in result.xcom("generate")["images"]] == [
        (0, 0),
        (0, 1),
    ]
    assert len(emulator.requests_to("/images/generations")) == 1


@pytest.mark.parametrize(
    ("output_format", "extension", "magic"),
    [("png", "png", b"\x89PNG"), ("webp", "webp", b"RIFF")],
)
def test_file_extension_comes_from_the_image_bytes(
    run_dag, emulator, output_dir, output_format, extension, magic
):
    conf = run_conf(output_dir, ["a tidy test card"], extra_params={"output_format": output_format})
    result = run_dag(DAG_FILE, "azerion_images", conf=conf)

    folder = task_folder(output_dir, "azerion_images", result.run_id)
    image = folder / f"0000-0.{extension}"
    assert image.read_bytes().startswith(magic)
    assert result.xcom("generate")["images"][0]["media_type"] == f"image/{extension}"


def test_a_retry_resumes_and_regenerates_only_what_is_missing(run_dag, emulator, output_dir):
    prompts = [f"prompt number {i}" for i in range(6)]
    emulator.faults.script(["ok", "ok", "ok", "empty_data"])  # one request at a time: prompt 3 fails

    result = run_dag(DAG_FILE, "azerion_images_retry", conf=run_conf(output_dir, prompts))

    assert result.state == "success"
    assert result.ti("generate").try_number == 2
    assert generated_prompts(emulator) == prompts[:4] + prompts[3:]
    folder = task_folder(output_dir, "azerion_images_retry", result.run_id)
    assert [sidecar(folder, i)["try_number"] for i in range(6)] == [1, 1, 1, 2, 2, 2]
    assert [entry["prompt"] for entry in result.xcom("generate")["images"]] == prompts


def test_rerunning_a_finished_run_sends_no_generation_request(run_dag, emulator, output_dir):
    conf = run_conf(output_dir, ["one", "two", "three"])
    first = run_dag(DAG_FILE, "azerion_images", logical_date=LOGICAL_DATE, conf=conf)
    emulator.reset()

    second = run_dag(DAG_FILE, "azerion_images", logical_date=LOGICAL_DATE, conf=conf)

    assert second.state == "success"
    assert second.run_id == first.run_id
    assert generated_prompts(emulator) == []
    assert second.xcom("generate") == first.xcom("generate")


def test_a_changed_prompt_is_generated_again(run_dag, emulator, output_dir):
    run_dag(DAG_FILE, "azerion_images", logical_date=LOGICAL_DATE, conf=run_conf(output_dir, ["one", "two"]))
    emulator.reset()

    result = run_dag(
        DAG_FILE, "azerion_images", logical_date=LOGICAL_DATE, conf=run_conf(output_dir, ["one", "TWO"])
    )

    assert generated_prompts(emulator) == ["TWO"]
    assert sidecar(task_folder(output_dir, "azerion_images", result.run_id), 1)["prompt"] == "TWO"


def test_overwrite_regenerates_stored_images(run_dag, emulator, output_dir):
    conf = run_conf(output_dir, ["one", "two"])
    first = run_dag(DAG_FILE, "azerion_images_overwrite", logical_date=LOGICAL_DATE, conf=conf)
    image = task_folder(output_dir, "azerion_images_overwrite", first.run_id) / "0000-0.jpg"
    inode = image.stat().st_ino
    emulator.reset()

    second = run_dag(DAG_FILE, "azerion_images_overwrite", logical_date=LOGICAL_DATE, conf=conf)

    assert second.state == "success"
    assert sorted(generated_prompts(emulator)) == ["one", "two"]
    assert image.stat().st_ino != inode  # replaced by a rename, not rewritten in place
    assert leftovers(output_dir) == []


def test_prompts_are_generated_concurrently_and_returned_in_order(run_dag, emulator, output_dir):
    emulator.latency = 0.3
    prompts = [f"concurrent prompt {i}" for i in range(8)]

    result = run_dag(DAG_FILE, "azerion_images", conf=run_conf(output_dir, prompts))

    assert result.state == "success"
    records = emulator.requests_to("/images/generations")
    assert len(records) == 8
    assert 1 < emulator.peak_concurrency <= 4  # the DAG's max_active_requests
    window = max(r.finished for r in records) - min(r.started for r in records)
    assert window < 1.5, f"8 prompts of 0.3 s, 4 at a time, took {window:.2f} s"  # ~0.6 s; serial 2.4 s
    assert [entry["prompt"] for entry in result.xcom("generate")["images"]] == prompts


def test_a_failed_prompt_lets_those_in_flight_finish_and_a_rerun_pays_only_the_rest(
    run_dag, emulator, output_dir, capfd
):
    prompts = [f"batch prompt {i}" for i in range(6)]
    # Four requests start together; one fails at once while three are still being generated.
    emulator.faults.script(["slow:1", "not_image", "slow:1", "slow:1"])

    result = run_dag(
        DAG_FILE, "azerion_images", logical_date=LOGICAL_DATE, conf=run_conf(output_dir, prompts)
    )

    assert result.state == "failed"
    records = emulator.requests_to("/images/generations")
    assert len(records) == 4, "no prompt may start after a failure"
    failed = prompts.index(next(r.prompt for r in records if r.fault == "not_image"))
    finished = sorted(prompts.index(r.prompt) for r in records if r.fault != "not_image")
    folder = task_folder(output_dir, "azerion_images", result.run_id)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [name for i in finished for name in (f"{i:04d}-0.jpg", f"{i:04d}-0.json")] + ["manifest.jsonl"]
    )
    assert leftovers(output_dir) == []
    assert f"prompt {failed} ('batch prompt {failed}')" in capfd.readouterr().out

    emulator.reset()
    rerun = run_dag(DAG_FILE, "azerion_images", logical_date=LOGICAL_DATE, conf=run_conf(output_dir, prompts))

    assert rerun.state == "success"
    assert sorted(generated_prompts(emulator)) == sorted([prompts[failed], prompts[4], prompts[5]])
    assert [entry["prompt"] for entry in rerun.xcom("generate")["images"]] == prompts


def test_outlet_asset_events_carry_the_image_uris(run_dag, emulator, output_dir):
    result = run_dag(DAG_FILE, "azerion_images_outlets", conf=run_conf(output_dir, ["a", "b"]))

    xcom = result.xcom("generate")
    uris = [entry["uri"] for entry in xcom["images"]]
    assert result.asset_events("file:///azerion-test/images") == [
        {"folder_uri": xcom["folder_uri"], "manifest_uri": xcom["manifest_uri"], "uris": uris, "count": 2}
    ]


def test_a_large_batch_logs_progress_every_5_percent_instead_of_a_line_per_image(
    run_dag, emulator, output_dir, capfd
):
    prompts = [f"progress prompt {index}" for index in range(60)]  # above LOG_EACH_IMAGE_UP_TO

    result = run_dag(DAG_FILE, "azerion_images", conf=run_conf(output_dir, prompts))

    assert result.state == "success"
    out = capfd.readouterr().out
    assert not re.search(r"Prompt \d+ image 0: wrote", out)
    stored = [int(count) for count in re.findall(r"Progress: (\d+) of 60 prompt\(s\) stored", out)]
    assert stored == list(range(3, 61, 3))  # one line per 5 %, in order, whatever finished first
    assert re.search(r"Wrote 60 image\(s\), \d+ bytes, for 60 prompt\(s\)", out)
    assert len(result.xcom("generate")["images"]) == 60
    assert SECRET_KEY not in out
    assert not BASE64_RUN.search(out)


@pytest.mark.parametrize(
    ("prompts", "log_each_image", "per_image_lines", "progress_lines"),
    [
        (60, True, 60, 0),
        (4, False, 0, 4),
    ],
)
def test_log_each_image_overrides_the_default(
    run_dag, emulator, output_dir, capfd, prompts, log_each_image, per_image_lines, progress_lines
):
    dag_id = f"azerion_images_log_each_image_{str(log_each_image).lower()}"
    conf = run_conf(output_dir, [f"log prompt {index}" for index in range(prompts)])

    result = run_dag(DAG_FILE, dag_id, conf=conf)

    assert result.state == "success"
    out = capfd.readouterr().out
    assert len(re.findall(r"Prompt \d+ image 0: wrote", out)) == per_image_lines
    assert len(re.findall(r"Progress: \d+ of \d+ prompt\(s\) stored", out)) == progress_lines
    assert SECRET_KEY not in out
    assert not BASE64_RUN.search(out)


def test_logs_show_each_image_and_a_summary_but_never_the_key_or_base64(run_dag, emulator, output_dir, capfd):
    result = run_dag(DAG_FILE, "azerion_images", conf=run_conf(output_dir, ["one", "two"]))

    out = capfd.readouterr().out
    folder = task_folder(output_dir, "azerion_images", result.run_id)
    for index in (0, 1):
        assert re.search(
            rf"Prompt {index} image 0: wrote {re.escape(folder.as_uri())}/{index:04d}-0.jpg \(\d+ bytes", out
        )
    assert re.search(r"Wrote 2 image\(s\), \d+ bytes, for 2 prompt\(s\) .* 0 prompt\(s\) skipped", out)
    assert "total_tokens=0" in out
    assert SECRET_KEY not in out
    assert not BASE64_RUN.search(out)
