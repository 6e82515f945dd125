"""How ImageGenerationOperator fails on bad answers from the API, and how it cleans up.

These call ``execute()`` directly: a failing task under ``dag.test()`` only shows its error in
the log, while here the exception itself (type and message) is checked. The runs that matter
for Airflow (retries, resume, mapped tasks) are in ``test_image_generation.py``; every bad
argument, with the exact error it gets, is in ``tests/reliability/test_bad_input.py``.
"""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_azerion.exceptions import (
    AzerionBadRequestError,
    AzerionResponseError,
)
from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from tests.operators.helpers import SMALL, execute, generated_prompts, leftovers, task_folder

PROMPTS = ["a red fox", "a blue whale with a very long and winding description " * 3, "a green owl"]


def operator(output_dir, **kwargs) -> ImageGenerationOperator:
    kwargs.setdefault("prompt", PROMPTS)
    kwargs.setdefault("extra_params", dict(SMALL))
    kwargs.setdefault("max_active_requests", 1)
    return ImageGenerationOperator(task_id="generate", output_path=output_dir.as_uri(), **kwargs)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("invalid_base64", "b64_json is not valid base64"),
        ("not_image", "are not a PNG, JPEG, WebP or GIF image"),
        ("empty_data", "returned no images"),
    ],
)
def test_a_bad_image_fails_naming_its_prompt_and_stores_nothing_for_it(emulator, output_dir, fault, message):
    emulator.faults.script(["ok", fault])

    with pytest.raises(AzerionResponseError, match=message) as caught:
        execute(operator(output_dir))

    assert str(caught.value).startswith("prompt 1 ('a blue whale with a very long and winding")
    assert "…" in str(caught.value)  # the prompt is shortened
    folder = task_folder(output_dir, "direct", "manual__2024-05-01T06:30:00+00:00")
    assert sorted(p.name for p in folder.iterdir()) == ["0000-0.jpg", "0000-0.json", "manifest.jsonl"]
    assert generated_prompts(emulator) == PROMPTS[:2], "no prompt starts after a failure"
    assert leftovers(output_dir) == []


def test_an_error_that_must_not_be_retried_keeps_its_type(emulator, output_dir):
    with pytest.raises(AzerionBadRequestError, match=r"^prompt 0 \('a red fox'\): Azerion API 400") as caught:
        execute(operator(output_dir, extra_params={"size": "8x8"}))

    assert isinstance(caught.value, AirflowFailException)


def test_the_first_failure_by_prompt_index_is_raised(emulator, output_dir):
    prompts = [f"prompt {i}" for i in range(4)]
    emulator.faults.script(["not_image", "ok", "not_image", "ok"])  # two of four concurrent requests fail

    with pytest.raises(AzerionResponseError) as caught:
        execute(operator(output_dir, prompt=prompts, max_active_requests=4))

    failed = sorted(prompts.index(r.prompt) for r in emulator.requests_to("/generations") if r.fault)
    assert len(failed) == 2
    assert str(caught.value).startswith(f"prompt {failed[0]} ")


def test_a_storage_error_names_the_prompt_and_leaves_no_temporary_file(emulator, output_dir):
    folder = task_folder(output_dir, "direct", "manual__2024-05-01T06:30:00+00:00")
    (folder / "0000-0.jpg").mkdir(parents=True)  # the image cannot be renamed onto a folder

    with pytest.raises(AirflowException, match=r"^prompt 0 \('a red fox'\): IsADirectoryError"):
        execute(operator(output_dir, prompt="a red fox"))

    assert leftovers(output_dir) == []


@pytest.mark.parametrize("concurrency", [1, 3])
def test_after_a_storage_error_the_manifest_lists_only_files_on_disk_and_a_retry_completes(
    emulator, output_dir, concurrency
):
    prompts = [f"commit prompt {index}" for index in range(6)]
    folder = task_folder(output_dir, "direct", "manual__2024-05-01T06:30:00+00:00")
    (folder / "0002-0.jpg").mkdir(parents=True)  # prompt 2's image cannot be renamed into place

    with pytest.raises(AirflowException, match=r"^prompt 2 "):
        execute(operator(output_dir, prompt=prompts, max_active_requests=concurrency))

    assert leftovers(output_dir) == []
    listed = (
        [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
        if (folder / "manifest.jsonl").exists()
        else []
    )
    assert 2 not in [entry["prompt_index"] for entry in listed]
    for entry in listed:  # whatever the commit passes dropped with prompt 2 is not listed
        assert (folder / entry["image"]).stat().st_size == entry["bytes"]
        assert (folder / entry["image"].replace(".jpg", ".json")).is_file()
    first_try = emulator.generation_count

    (folder / "0002-0.jpg").rmdir()
    result = execute(operator(output_dir, prompt=prompts, max_active_requests=concurrency))

    assert [entry["prompt"] for entry in result["images"]] == prompts
    stored_before = {entry["prompt_index"] for entry in listed}
    assert emulator.generation_count - first_try <= len(prompts) - len(stored_before)
    assert leftovers(output_dir) == []


def test_a_regenerated_prompt_replaces_the_files_of_its_older_version(emulator, output_dir):
    prompts = ["stale prompt 0", "stale prompt 1", "stale prompt 2"]
    execute(operator(output_dir, prompt=prompts, extra_params={**SMALL, "output_format": "png"}))
    folder = task_folder(output_dir, "direct", "manual__2024-05-01T06:30:00+00:00")
    (folder / "0001-1.jpg").write_bytes(b"an extra image of an older version")
    (folder / "0001-1.json").write_text("{}")

    # Other parameters: every prompt is generated again, as WebP this time.
    result = execute(operator(output_dir, prompt=prompts, extra_params={**SMALL, "output_format": "webp"}))

    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted(
        [*(f"{i:04d}-0.{ext}" for i in range(3) for ext in ("webp", "json")), "manifest.jsonl"]
    )
    assert [entry["media_type"] for entry in result["images"]] == ["image/webp"] * 3


def test_an_absolute_local_path_without_scheme_is_accepted(emulator, output_dir):
    op = ImageGenerationOperator(
        task_id="generate", prompt="a fox", output_path=str(output_dir), extra_params=dict(SMALL)
    )

    result = execute(op)

    assert result["images"][0]["uri"].startswith(f"file://{output_dir}/direct/")


def test_leftover_temporary_files_are_removed(emulator, output_dir):
    folder = task_folder(output_dir, "direct", "manual__2024-05-01T06:30:00+00:00")
    folder.mkdir(parents=True)
    (folder / ".0000-0.jpg.0123abcd.partial").write_bytes(b"half an image")

    execute(operator(output_dir, prompt="a fox"))

    assert leftovers(output_dir) == []
    assert (folder / "0000-0.jpg").exists()


def test_an_incomplete_prompt_is_generated_again(emulator, output_dir):
    execute(operator(output_dir, prompt=["one", "two"]))
    folder = task_folder(output_dir, "direct", "manual__2024-05-01T06:30:00+00:00")
    (folder / "0001-0.jpg").write_bytes(b"truncated")  # size no longer matches its sidecar
    emulator.reset()

    result = execute(operator(output_dir, prompt=["one", "two"]))

    assert generated_prompts(emulator) == ["two"]
    assert (folder / "0001-0.jpg").stat().st_size == result["images"][1]["bytes"]


def test_changed_parameters_are_generated_again(emulator, output_dir):
    execute(operator(output_dir, prompt="one"))
    emulator.reset()

    execute(operator(output_dir, prompt="one", extra_params={"size": "32x32"}))

    assert generated_prompts(emulator) == ["one"]
