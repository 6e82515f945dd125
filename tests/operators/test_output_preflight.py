"""An output the task cannot write is found before anything is paid for, and fails without retries."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_azerion.exceptions import AzerionStorageError
from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from tests.operators.helpers import execute, generated_prompts, leftovers

pytestmark = pytest.mark.azerion_emulator(max_side=16)


def operator(output_path: str) -> ImageGenerationOperator:
    return ImageGenerationOperator(
        task_id="generate",
        prompt=["a fox", "an owl"],
        output_path=output_path,
        extra_params={"size": "16x16"},
    )


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made read-only for this process: a read-only bind mount as root, else chmod."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only folder here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_output_fails_before_any_generation_and_is_not_retried(emulator, output_dir):
    with read_only(output_dir), pytest.raises(AzerionStorageError) as caught:
        execute(operator(output_dir.as_uri() + "/"))

    assert isinstance(caught.value, AirflowFailException), "a read-only store does not heal: no retries"
    assert generated_prompts(emulator) == [], "nothing may be paid for before the output is proven writable"
    assert str(output_dir) in str(caught.value)


def test_an_output_under_a_file_fails_before_any_generation(emulator, output_dir):
    (output_dir / "blocked").write_text("a file where a folder should be")

    with pytest.raises(AzerionStorageError):
        execute(operator((output_dir / "blocked" / "images").as_uri()))

    assert generated_prompts(emulator) == []


def test_the_probe_leaves_nothing_behind(emulator, output_dir):
    execute(operator(output_dir.as_uri() + "/"))

    assert len(generated_prompts(emulator)) == 2
    assert leftovers(output_dir) == []
    folder = next(output_dir.rglob("generate"))
    assert sorted(p.name for p in folder.iterdir()) == [
        "0000-0.jpg",
        "0000-0.json",
        "0001-0.jpg",
        "0001-0.json",
        "manifest.jsonl",
    ]


def test_a_fully_stored_task_on_a_read_only_store_succeeds_without_writing(emulator, output_dir):
    first = execute(operator(output_dir.as_uri() + "/"))
    emulator.reset()

    with read_only(output_dir):
        again = execute(operator(output_dir.as_uri() + "/"))

    assert again == first
    assert generated_prompts(emulator) == []
