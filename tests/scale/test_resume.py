"""A retry finds what earlier tries stored from one listing and the manifest, at the store's pace.

The S3 tests count every storage request through a proxy in front of moto: a resume must cost
O(1) listings and far fewer reads than prompts, and read sidecars (concurrently, bounded) only
for prompts the manifest does not cover. The local tests check the manifest's invariant: a line
never vouches for files a later try replaced.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from airflow_provider_azerion.storage import READ_CONCURRENCY
from tests.operators.helpers import execute, generated_prompts, sidecar, task_folder
from tests.scale.conftest import BUCKET

pytestmark = pytest.mark.azerion_emulator(max_side=16)

RUN_ID = "manual__2024-05-01T06:30:00+00:00"
FOLDER_KEY = "runs/direct/manual__2024-05-01T06_30_00_00_00/generate"


def operator(output_path: str, prompts: list[str], **kwargs) -> ImageGenerationOperator:
    return ImageGenerationOperator(
        task_id="generate",
        prompt=prompts,
        output_path=output_path,
        extra_params={"size": "16x16"},
        max_active_requests=kwargs.pop("max_active_requests", 8),
        **kwargs,
    )


def on_s3(s3, prompts: list[str], **kwargs) -> ImageGenerationOperator:
    return operator(f"s3://{BUCKET}/runs/", prompts, output_conn_id=s3.conn_id, **kwargs)


def manifest_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- on S3, counting requests --------------------------------------------------------------------


def test_a_retry_of_stored_prompts_costs_one_listing_and_one_read(emulator, s3):
    prompts = [f"stored prompt {i}" for i in range(120)]
    first = execute(on_s3(s3, prompts))
    emulator.reset()
    s3.proxy.reset()
    s3.cold()

    again = execute(on_s3(s3, prompts))

    assert generated_prompts(emulator) == []
    assert s3.proxy.counts() == {"LIST": 1, "GET": 1}, "no sidecar read, nothing rewritten"
    assert [r.key for r in s3.proxy.requests if r.kind == "GET"] == [f"{FOLDER_KEY}/manifest.jsonl"]
    assert again == first


def test_after_a_crash_only_prompts_the_manifest_misses_are_read(emulator, s3):
    prompts = [f"crash prompt {i}" for i in range(120)]
    execute(on_s3(s3, prompts))
    manifest_key = f"{FOLDER_KEY}/manifest.jsonl"
    # As if a try had written the manifest after 50 prompts and crashed after storing 70 more.
    lines = s3.objects(manifest_key)[manifest_key].splitlines(keepends=True)
    s3.client.put_object(Bucket=BUCKET, Key=manifest_key, Body=b"".join(lines[:50]))
    emulator.reset()
    s3.proxy.reset()
    s3.cold()

    result = execute(on_s3(s3, prompts))

    assert generated_prompts(emulator) == []
    reads = [r.key for r in s3.proxy.requests if r.kind == "GET"]
    assert sorted(reads) == sorted([manifest_key] + [f"{FOLDER_KEY}/{i:04d}-0.json" for i in range(50, 120)])
    assert s3.proxy.counts()["LIST"] == 1
    assert [r.key for r in s3.proxy.requests if r.kind == "PUT"] == [manifest_key], "only the manifest"
    rewritten = [json.loads(line) for line in s3.objects(manifest_key)[manifest_key].splitlines()]
    assert [entry["prompt"] for entry in rewritten] == prompts
    assert result["count"] == 120


def test_sidecars_are_read_concurrently_but_never_more_than_the_bound(emulator, s3):
    prompts = [f"concurrent read {i}" for i in range(64)]
    execute(on_s3(s3, prompts))
    s3.client.delete_object(Bucket=BUCKET, Key=f"{FOLDER_KEY}/manifest.jsonl")
    emulator.reset()
    s3.proxy.latency = 0.05  # long enough for reads to overlap
    s3.proxy.reset()
    s3.cold()

    execute(on_s3(s3, prompts))

    assert generated_prompts(emulator) == []
    assert Counter(r.kind for r in s3.proxy.requests)["GET"] == 64
    assert 1 < s3.proxy.peak_in_flight <= READ_CONCURRENCY


def test_a_task_whose_store_cannot_be_read_fails_rather_than_pays_again(emulator, output_dir, monkeypatch):
    prompts = ["one", "two"]
    execute(operator(output_dir.as_uri(), prompts))
    folder = task_folder(output_dir, "direct", RUN_ID)
    (folder / "manifest.jsonl").unlink()
    emulator.reset()
    fs = ObjectStoragePath(output_dir.as_uri()).fs
    real = fs.cat_file

    def denied(path, *args, **kwargs):
        if path.endswith("0001-0.json"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(type(fs), "cat_file", lambda self, path, *a, **k: denied(path, *a, **k))

    with pytest.raises(OSError, match=r"could not read 0001-0\.json in file://.*Check the output store"):
        execute(operator(output_dir.as_uri(), prompts))

    assert generated_prompts(emulator) == []


# -- the manifest's invariant, on local files ----------------------------------------------------


def test_the_manifest_lists_every_image_as_its_sidecar_in_order(emulator, output_dir):
    result = execute(operator(output_dir.as_uri(), ["one", "two", "three"], n=2))

    folder = task_folder(output_dir, "direct", RUN_ID)
    lines = manifest_lines(folder / "manifest.jsonl")
    expected = [
        sidecar(folder, prompt_index, image_index) for prompt_index in range(3) for image_index in (0, 1)
    ]
    assert lines == expected
    assert result["count"] == 6


def test_a_changed_prompt_loses_its_manifest_line_before_it_is_generated_again(emulator, output_dir):
    execute(operator(output_dir.as_uri(), ["one", "two", "three"]))
    folder = task_folder(output_dir, "direct", RUN_ID)
    emulator.reset()
    emulator.faults.script(["empty_data"])  # the new prompt 1 fails: the task stops after it

    with pytest.raises(Exception, match="prompt 1"):
        execute(operator(output_dir.as_uri(), ["one", "TWO", "three"]))

    assert generated_prompts(emulator) == ["TWO"]
    assert [line["prompt"] for line in manifest_lines(folder / "manifest.jsonl")] == ["one", "three"]


def test_overwrite_drops_the_manifest_before_replacing_files(emulator, output_dir):
    prompts = ["one", "two", "three"]
    execute(operator(output_dir.as_uri(), prompts))
    folder = task_folder(output_dir, "direct", RUN_ID)
    emulator.reset()
    emulator.faults.script(["ok", "empty_data"])  # one request at a time: prompt 1 fails

    with pytest.raises(Exception, match="prompt 1"):
        execute(operator(output_dir.as_uri(), prompts, overwrite=True, max_active_requests=1), try_number=2)

    lines = manifest_lines(folder / "manifest.jsonl")
    assert 0 in [line["prompt_index"] for line in lines]
    assert 1 not in [line["prompt_index"] for line in lines], "prompt 1 failed in this try"
    assert lines == [sidecar(folder, line["prompt_index"]) for line in lines], "each as stored now"
    assert {line["try_number"] for line in lines} == {2}, "only what this try stored"


def test_a_torn_manifest_is_not_trusted_and_is_rewritten(emulator, output_dir):
    prompts = [f"torn {i}" for i in range(5)]
    execute(operator(output_dir.as_uri(), prompts))
    manifest = task_folder(output_dir, "direct", RUN_ID) / "manifest.jsonl"
    manifest.write_text(
        "".join(manifest.read_text().splitlines(keepends=True)[:3]) + '{"prompt_index": 3, "ima'
    )
    emulator.reset()

    result = execute(operator(output_dir.as_uri(), prompts))

    assert generated_prompts(emulator) == []
    assert [line["prompt"] for line in manifest_lines(manifest)] == prompts
    assert result["count"] == 5


def test_an_image_removed_since_the_manifest_is_generated_again(emulator, output_dir):
    prompts = ["one", "two", "three"]
    execute(operator(output_dir.as_uri(), prompts))
    folder = task_folder(output_dir, "direct", RUN_ID)
    (folder / "0001-0.jpg").unlink()
    emulator.reset()

    result = execute(operator(output_dir.as_uri(), prompts))

    assert generated_prompts(emulator) == ["two"]
    assert (folder / "0001-0.jpg").stat().st_size == result["images"][1]["bytes"]
    assert manifest_lines(folder / "manifest.jsonl") == [sidecar(folder, i) for i in range(3)]


def test_a_resume_with_changed_parameters_reads_no_sidecar(emulator, output_dir, monkeypatch):
    prompts = [f"param {i}" for i in range(6)]
    execute(operator(output_dir.as_uri(), prompts))
    emulator.reset()
    fs = ObjectStoragePath(output_dir.as_uri()).fs
    reads = []
    real = type(fs).cat_file
    monkeypatch.setattr(
        type(fs), "cat_file", lambda self, path, *a, **k: reads.append(path) or real(self, path, *a, **k)
    )

    execute(operator(output_dir.as_uri(), prompts, style="vivid"))

    assert sorted(generated_prompts(emulator)) == prompts, "nothing reusable: another style"
    assert [path.rsplit("/", 1)[-1] for path in reads] == ["manifest.jsonl"]
