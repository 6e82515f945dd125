"""The XCom and the asset-event extra stay bounded at any batch size; the manifest can be read back.

These build :class:`StoredImage` lists directly (no API, no Airflow run), so that batch sizes of
ten thousand images cost milliseconds.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_azerion.folder import OutputFolder, TaskIdentity
from airflow_provider_azerion.outputs import (
    ASSET_EXTRA_LIMIT,
    CHUNK_IMAGES,
    XCOM_LIMIT,
    StoredImage,
    images_of,
    read_manifest,
)

IDENTITY = TaskIdentity(dag_id="scale", run_id="manual__2024-05-01T06:30:00+00:00", task_id="generate")


def folder_in(tmp_path) -> OutputFolder:
    return OutputFolder(ObjectStoragePath(tmp_path.as_uri()), IDENTITY)


def images(
    folder: OutputFolder, count: int, prompt_chars: int = 40, per_prompt: int = 1
) -> list[StoredImage]:
    """``count`` images as the operator records them, ``per_prompt`` to a prompt."""
    result = []
    for position in range(count):
        prompt_index, image_index = divmod(position, per_prompt)
        name = f"{prompt_index:04d}-{image_index}.jpg"
        metadata = {
            "prompt": f"{prompt_index:06d} " + "x" * (prompt_chars - 7),
            "revised_prompt": None,
            "model": "stable-image-core-1.1",
            "params": {"model": "stable-image-core-1.1", "response_format": "b64_json"},
            "prompt_index": prompt_index,
            "image_index": image_index,
            "image_count": per_prompt,
            "image": name,
            "media_type": "image/jpeg",
            "bytes": 1000 + position,
            "sha256": f"{position:064x}",
            "created": "2024-05-01T06:30:00+00:00",
        }
        uris = f"{folder.uri}/{name}", f"{folder.uri}/{prompt_index:04d}-{image_index}.json"
        result.append(StoredImage(*uris, metadata))
    return result


@pytest.mark.parametrize("count", [1, 3, 150, 1000, 10_000, 100_000])
@pytest.mark.parametrize("prompt_chars", [40, 4000])
def test_the_xcom_stays_within_64_kib_whatever_the_batch(tmp_path, count, prompt_chars):
    folder = folder_in(tmp_path)

    result = folder.task_result(images(folder, count, prompt_chars))

    assert len(json.dumps(result)) <= XCOM_LIMIT
    assert result["count"] == count
    assert result["folder_uri"] == folder.uri
    assert result["manifest_uri"] == folder.uri + "/manifest.jsonl"


def test_a_small_batch_carries_every_image_entry(tmp_path):
    folder = folder_in(tmp_path)
    stored = images(folder, 3, per_prompt=1)

    result = folder.task_result(stored)

    assert result["images"] == [image.to_xcom() for image in stored]
    assert result["chunks"] == [{"manifest_uri": folder.manifest_uri, "start": 0, "stop": 3}]


def test_a_batch_too_large_for_its_entries_carries_none_of_them(tmp_path):
    folder = folder_in(tmp_path)

    result = folder.task_result(images(folder, 1000))

    assert "images" not in result  # never a silently truncated list


@pytest.mark.parametrize("count", [1, 99, 100, 101, 250, 10_000, 100_000])
def test_chunks_cover_every_image_once_in_order(tmp_path, count):
    folder = folder_in(tmp_path)

    chunks = folder.task_result(images(folder, count))["chunks"]

    assert chunks[0]["start"] == 0
    assert chunks[-1]["stop"] == count
    assert all(a["stop"] == b["start"] for a, b in itertools.pairwise(chunks))
    assert all(chunk["stop"] - chunk["start"] >= CHUNK_IMAGES for chunk in chunks[:-1])
    if count <= 100 * CHUNK_IMAGES:  # beyond, chunks grow so that their list still fits
        assert len(chunks) == math.ceil(count / CHUNK_IMAGES)


def test_the_manifest_is_one_sidecar_per_line_in_order_and_chunks_point_at_its_bytes(tmp_path):
    folder = folder_in(tmp_path)
    stored = images(folder, 250, per_prompt=2)

    folder.write_manifest(stored)
    result = folder.task_result(stored)

    manifest = Path(folder.path.path) / "manifest.jsonl"
    lines = manifest.read_bytes().splitlines(keepends=True)
    assert [json.loads(line) for line in lines] == [image.metadata for image in stored]
    assert [
        len(chunk_lines) for chunk_lines in (lines[c["start"] : c["stop"]] for c in result["chunks"])
    ] == [
        100,
        100,
        50,
    ]
    for chunk in result["chunks"]:
        first, end = chunk["byte_range"]
        assert manifest.read_bytes()[first:end] == b"".join(lines[chunk["start"] : chunk["stop"]])


def test_read_manifest_returns_one_chunk_as_image_dicts(tmp_path):
    folder = folder_in(tmp_path)
    stored = images(folder, 250)
    folder.write_manifest(stored)
    chunk = folder.task_result(stored)["chunks"][1]

    entries = read_manifest(**chunk)

    assert [entry["prompt_index"] for entry in entries] == list(range(100, 200))
    assert entries[0] == {
        **stored[100].metadata,
        "uri": stored[100].uri,
        "metadata_uri": stored[100].metadata_uri,
    }


def test_read_manifest_without_byte_range_slices_by_index(tmp_path):
    folder = folder_in(tmp_path)
    stored = images(folder, 30)
    folder.write_manifest(stored)

    entries = read_manifest(folder.manifest_uri, start=10, stop=12)

    assert [entry["uri"] for entry in entries] == [stored[10].uri, stored[11].uri]


def test_images_of_gives_the_same_images_for_a_small_and_a_large_batch(tmp_path):
    folder = folder_in(tmp_path)
    stored = images(folder, 400)
    folder.write_manifest(stored)
    large = folder.task_result(stored)
    small = folder.task_result(stored[:2])

    assert "images" not in large
    assert [entry["uri"] for entry in images_of(large)] == [image.uri for image in stored]
    assert images_of(small) == [image.to_xcom() for image in stored[:2]]


def test_a_rewritten_manifest_is_detected_by_a_stale_chunk(tmp_path):
    folder = folder_in(tmp_path)
    stored = images(folder, 250)
    folder.write_manifest(stored)
    chunk = folder.task_result(stored)["chunks"][2]
    folder.write_manifest(stored[:120])  # the task ran again with fewer prompts

    with pytest.raises(ValueError, match=r"ran again since\. Rerun this task"):
        read_manifest(**chunk)


def test_reading_a_missing_manifest_says_what_to_rerun(tmp_path):
    with pytest.raises(FileNotFoundError, match="Rerun that task, then this one"):
        read_manifest((tmp_path / "manifest.jsonl").as_uri())


@pytest.mark.parametrize("count", [2, 10_000])
def test_the_asset_event_extra_stays_bounded(tmp_path, count):
    folder = folder_in(tmp_path)
    stored = images(folder, count)

    extra = folder.asset_extra(stored)

    assert len(json.dumps(extra)) <= ASSET_EXTRA_LIMIT
    assert extra["count"] == count
    assert extra["manifest_uri"] == folder.manifest_uri
    assert extra.get("uris", []) == ([image.uri for image in stored] if count == 2 else [])
