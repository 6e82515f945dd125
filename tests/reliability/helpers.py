"""Checks the reliability tests share: what a run's output folder must look like after any fault."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

from PIL import Image

from airflow_provider_azerion.emulator.server import EmulatorServer
from airflow_provider_azerion.image_formats import sniff_image_format

DAG_FILE = "azerion_reliability.py"
SMALL = {"size": "32x32"}


def run_conf(output_dir: Path, prompts: list[str], **extra_params: Any) -> dict[str, Any]:
    """The ``conf`` of a reliability DAG run."""
    return {
        "prompts": prompts,
        "output_path": output_dir.as_uri() + "/",
        "extra_params": {**SMALL, **extra_params},
    }


def assert_outputs_sound(root: Path) -> dict[str, dict[str, Any]]:
    """Assert that ``root`` holds only complete images, each with a sidecar that vouches for it.

    No temporary or hidden file anywhere; every sidecar names an image whose size and SHA-256 it
    records, whose bytes are the format its media type and extension say, and which Pillow
    decodes to the end; every image has such a sidecar; each line of a ``manifest.jsonl`` is
    exactly the sidecar of an image next to it.

    :return: the sidecars' contents by the sidecar's path relative to ``root``.
    """
    files = [path for path in root.rglob("*") if path.is_file()]
    hidden = [str(path.relative_to(root)) for path in files if path.name.startswith(".")]
    assert hidden == [], f"temporary files left behind: {hidden}"
    sidecars: dict[str, dict[str, Any]] = {}
    vouched: set[Path] = set()
    for path in sorted(p for p in files if p.suffix == ".json"):
        metadata = json.loads(path.read_text())
        image = path.with_name(metadata["image"])
        data = image.read_bytes()
        assert len(data) == metadata["bytes"], f"{image.name}: size differs from its sidecar"
        assert hashlib.sha256(data).hexdigest() == metadata["sha256"], f"{image.name}: sha256 mismatch"
        fmt = sniff_image_format(data)
        assert fmt is not None, f"{image.name} is not an image"
        assert (fmt.media_type, image.suffix) == (metadata["media_type"], f".{fmt.extension}")
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.load()  # raises on a truncated or corrupt image
        vouched.add(image)
        sidecars[str(path.relative_to(root))] = metadata
    manifests = [p for p in files if p.name == "manifest.jsonl"]
    for manifest in manifests:  # each line is the sidecar of an image next to it (a killed try may lag)
        for line in manifest.read_text().splitlines():
            entry = json.loads(line)
            name = manifest.parent / f"{entry['prompt_index']:04d}-{entry['image_index']}.json"
            assert sidecars.get(str(name.relative_to(root))) == entry, (
                f"{manifest}: stale line for {name.name}"
            )
    orphans = [
        str(p.relative_to(root))
        for p in files
        if p.suffix != ".json" and p not in vouched and p not in manifests
    ]
    assert orphans == [], f"images without a sidecar: {orphans}"
    return sidecars


def wait_idle(emulator: EmulatorServer, timeout: float = 10.0) -> None:
    """Wait until the emulator handles no generation, e.g. one whose client gave up on it.

    A request answered late (the ``slow`` fault) is logged when the server finishes it, which
    can be after the client timed out and the test moved on.
    """
    deadline = time.monotonic() + timeout
    while emulator.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.02)  # the record is written as the response starts, just after in_flight drops


def generation_prompts(emulator: EmulatorServer) -> list[str | None]:
    """Prompts of every generation request the emulator received, in the order they arrived."""
    wait_idle(emulator)
    records = sorted(emulator.requests_to("/images/generations"), key=lambda record: record.started)
    return [record.prompt for record in records]
