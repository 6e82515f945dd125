"""What every object store must show after the operator ran against it, whatever the cloud.

A store under test is described by :class:`Store`: its URL scheme, the bucket or container the
test created, the connection the operator uses, and a way to read every object back with the
cloud's own SDK (not with the fsspec filesystem the operator wrote through).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator
from tests.operators.helpers import execute, generated_prompts

PROMPTS = ["a paper boat", "a hot-air balloon", "a lighthouse"]
RUN_ID = "manual__2024-05-01T06:30:00+00:00"
FOLDER_KEY = "images/direct/manual__2024-05-01T06_30_00_00_00/generate"


@dataclass
class Store:
    scheme: str  # "abfs", "gs"
    bucket: str  # the bucket or container
    conn_id: str
    objects: Callable[[str], dict[str, bytes]]  # every object under a prefix, by key, via the SDK
    cold: Callable[[], None]  # forget the filesystem's cached listings

    def url(self, path: str = "") -> str:
        return f"{self.scheme}://{self.bucket}/{path}"


def operator(store: Store, output_path: str | None = None) -> ImageGenerationOperator:
    return ImageGenerationOperator(
        task_id="generate",
        prompt=PROMPTS,
        output_path=output_path or store.url("images/"),
        output_conn_id=store.conn_id,
        extra_params={"size": "16x16"},
    )


def images_sidecars_and_manifest_agree(store: Store, emulator) -> dict:
    """Run the operator once; check every object, sidecar and manifest line; return the XCom."""
    result = execute(operator(store), run_id=RUN_ID)

    assert sorted(generated_prompts(emulator)) == sorted(PROMPTS)
    stored = store.objects("images/")
    names = [f"{i:04d}-0.{ext}" for i in range(len(PROMPTS)) for ext in ("jpg", "json")]
    assert sorted(stored) == sorted(
        [f"{FOLDER_KEY}/{name}" for name in names] + [f"{FOLDER_KEY}/manifest.jsonl"]
    )
    for i, prompt in enumerate(PROMPTS):
        image = stored[f"{FOLDER_KEY}/{i:04d}-0.jpg"]
        sidecar = json.loads(stored[f"{FOLDER_KEY}/{i:04d}-0.json"])
        assert image.startswith(b"\xff\xd8\xff")
        assert sidecar["prompt"] == prompt
        assert sidecar["bytes"] == len(image)
        assert sidecar["sha256"] == hashlib.sha256(image).hexdigest()

    # The manifest: one line per image, each exactly that image's sidecar, naming an object that is there.
    manifest = [json.loads(line) for line in stored[f"{FOLDER_KEY}/manifest.jsonl"].decode().splitlines()]
    assert manifest == [json.loads(stored[f"{FOLDER_KEY}/{i:04d}-0.json"]) for i in range(len(PROMPTS))]
    for entry in manifest:
        image = stored[f"{FOLDER_KEY}/{entry['image']}"]
        assert hashlib.sha256(image).hexdigest() == entry["sha256"]

    assert result["count"] == len(PROMPTS)
    assert result["folder_uri"].rstrip("/") == store.url(FOLDER_KEY)
    assert result["manifest_uri"] == store.url(f"{FOLDER_KEY}/manifest.jsonl")
    assert [image["uri"] for image in result["images"]] == [
        store.url(f"{FOLDER_KEY}/{entry['image']}") for entry in manifest
    ]
    # URIs name objects, never the connection used to reach them.
    assert store.conn_id not in json.dumps(result) + stored[f"{FOLDER_KEY}/manifest.jsonl"].decode()
    return result


def a_second_run_resumes_without_generating(store: Store, emulator) -> None:
    first = execute(operator(store), run_id=RUN_ID)
    before = store.objects("images/")
    emulator.reset()
    store.cold()

    again = execute(operator(store), run_id=RUN_ID)

    assert generated_prompts(emulator) == []
    assert again == first
    assert store.objects("images/") == before


def lineage_names_the_output_root(store: Store, emulator, namespace: str) -> None:
    task = operator(store)
    execute(task, run_id=RUN_ID)

    lineage = task.get_openlineage_facets_on_complete(task_instance=None)

    assert [(d.namespace, d.name) for d in lineage.outputs] == [(namespace, "images")]
    statistics = lineage.outputs[0].outputFacets["outputStatistics"]
    assert statistics.rowCount == len(PROMPTS)
    stored = store.objects("images/")
    assert statistics.size == sum(len(data) for key, data in stored.items() if key.endswith(".jpg"))
