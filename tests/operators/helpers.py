"""Small helpers shared by the operator tests: where a run's files are and what they say."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from airflow_provider_azerion.storage import sanitize_segment

DAG_FILE = "azerion_image_generation.py"
LOGICAL_DATE = datetime.datetime(2024, 5, 1, 6, 30, tzinfo=datetime.timezone.utc)
SMALL = {"size": "64x64"}


def run_conf(output_dir: Path, prompts: list[str], **params: Any) -> dict[str, Any]:
    """The ``conf`` of a test DAG run: prompts, output folder and API parameters."""
    return {
        "prompts": prompts,
        "output_path": output_dir.as_uri() + "/",
        "extra_params": {**SMALL, **params.pop("extra_params", {})},
        **params,
    }


def task_folder(output_dir: Path, dag_id: str, run_id: str, task_id: str = "generate", map_index: int = -1):
    """The folder the operator writes a task instance's files into."""
    name = sanitize_segment(task_id) + (f"-{map_index}" if map_index >= 0 else "")
    return output_dir / dag_id / sanitize_segment(run_id) / name


def sidecar(folder: Path, prompt_index: int, image_index: int = 0) -> dict[str, Any]:
    """The parsed JSON sidecar of one image."""
    return json.loads((folder / f"{prompt_index:04d}-{image_index}.json").read_text())


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generated_prompts(emulator) -> list[str]:
    """Prompts of the generation requests the emulator received, in the order they finished."""
    return [record.prompt for record in emulator.requests_to("/images/generations")]


def leftovers(output_dir: Path) -> list[Path]:
    """Temporary files anywhere under ``output_dir`` (there should never be any)."""
    return sorted(path for path in output_dir.rglob(".*") if path.name.endswith(".partial"))


def execute(operator, *, dag_id: str = "direct", run_id: str = "manual__2024-05-01T06:30:00+00:00", **ti):
    """Call ``operator.execute`` with the smallest context it needs (no Airflow run around it)."""
    fields = {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": operator.task_id,
        "map_index": -1,
        "try_number": 1,
    }
    fields.update(ti)
    return operator.execute({"ti": SimpleNamespace(**fields)})
