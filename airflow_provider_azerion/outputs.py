"""What an image-generation task leaves in storage, and how a later try finds it again.

One task instance owns one folder::

    {output_path}/{dag_id}/{run_id}/{task_id}[-{map_index}]/
        0000-0.png   0000-0.json   # prompt 0, image 0 and its sidecar
        0001-0.webp  0001-0.json
        0001-1.webp  0001-1.json   # prompt 1 produced two images

Names are deterministic for a task instance (a retry finds its predecessor's files) and distinct
across runs, map indexes and prompts. The image extension comes from the bytes, not the request.

Each JSON sidecar is written after *all* images of its prompt, so a sidecar's presence means its
image is complete, and the sidecars of a prompt carry the number of images it produced. A prompt
is therefore stored completely when every sidecar up to that count exists, each image has the
size its sidecar records, and the sidecars describe the same request as now (prompt, model and
parameters): a retry can skip it without calling, or paying, the API again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion import __version__
from airflow_provider_azerion.storage import (
    is_temp_name,
    list_files,
    remove_files,
    sanitize_segment,
    storage_uri,
    write_atomic,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_azerion.image_formats import ImageFormat

#: Sidecar fields that also go to XCom, in this order.
XCOM_FIELDS = (
    "prompt_index",
    "image_index",
    "prompt",
    "revised_prompt",
    "model",
    "media_type",
    "bytes",
    "sha256",
    "created",
)
#: Sidecar fields that must match the current request for a stored prompt to be reused.
REQUEST_FIELDS = ("prompt", "model", "params")


@dataclass(frozen=True)
class TaskIdentity:
    """The task instance an output folder belongs to.

    :param dag_id: the DAG id.
    :param run_id: the DAG run id.
    :param task_id: the task id.
    :param map_index: the map index; ``-1`` for a task that is not mapped.
    :param try_number: the current try, recorded in sidecars.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TaskIdentity:
        """Read the identity of the running task instance from its Airflow context."""
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if map_index is None else int(map_index),
            try_number=int(getattr(ti, "try_number", 1) or 1),
        )


@dataclass(frozen=True)
class StoredImage:
    """One image in storage with its sidecar.

    :param uri: where the image is (plain URI, no connection id).
    :param metadata_uri: where its JSON sidecar is.
    :param metadata: the sidecar's contents.
    """

    uri: str
    metadata_uri: str
    metadata: dict[str, Any]

    def to_xcom(self) -> dict[str, Any]:
        """The plain, small dict pushed to XCom: locations and facts, never image bytes."""
        return {"uri": self.uri, "metadata_uri": self.metadata_uri} | {
            name: self.metadata.get(name) for name in XCOM_FIELDS
        }


def image_name(prompt_index: int, image_index: int, extension: str) -> str:
    """File name of image ``image_index`` of prompt ``prompt_index``."""
    return f"{prompt_index:04d}-{image_index}.{extension}"


def sidecar_name(prompt_index: int, image_index: int) -> str:
    """File name of the JSON sidecar of image ``image_index`` of prompt ``prompt_index``."""
    return f"{prompt_index:04d}-{image_index}.json"


class OutputFolder:
    """The folder of one task instance's images and sidecars.

    :param root: the operator's ``output_path``, resolved.
    :param identity: the task instance writing into it.
    """

    def __init__(self, root: ObjectStoragePath, identity: TaskIdentity) -> None:
        task_segment = sanitize_segment(identity.task_id)
        if identity.map_index >= 0:
            task_segment += f"-{identity.map_index}"
        self.identity = identity
        self.path = (
            root / sanitize_segment(identity.dag_id) / sanitize_segment(identity.run_id) / task_segment
        )
        self._listing: dict[str, int] = {}

    @property
    def uri(self) -> str:
        """Plain URI of the folder."""
        return storage_uri(self.path)

    def scan(self) -> int:
        """List the folder once (a later lookup uses this snapshot) and drop leftover temp files.

        Temporary files belong to writes interrupted by a crash; nothing will ever rename them.

        :return: how many leftover temporary files were removed.
        """
        listing = list_files(self.path)
        leftovers = [name for name in listing if is_temp_name(name)]
        remove_files(self.path, leftovers)
        self._listing = {name: size for name, size in listing.items() if not is_temp_name(name)}
        return len(leftovers)

    def find_stored(self, prompt_index: int, request: Mapping[str, Any]) -> list[StoredImage] | None:
        """The images a previous try stored for this prompt, if they are complete and current.

        :param prompt_index: the prompt's position in the operator's prompt list.
        :param request: the current value of each of :data:`REQUEST_FIELDS`.
        :return: the stored images in image order, or ``None`` when the prompt must be generated.
        """
        first = self._read_sidecar(prompt_index, 0)
        count = first.get("image_count") if first else None
        if not isinstance(count, int) or count < 1:
            return None
        expected = _json_normalised({name: request[name] for name in REQUEST_FIELDS})
        stored = []
        for image_index in range(count):
            metadata = first if image_index == 0 else self._read_sidecar(prompt_index, image_index)
            if metadata is None or any(metadata.get(k) != v for k, v in expected.items()):
                return None
            name = metadata.get("image")
            if not isinstance(name, str) or self._listing.get(name) != metadata.get("bytes"):
                return None  # image missing or of another size: a sidecar from an older attempt
            stored.append(self._stored(name, sidecar_name(prompt_index, image_index), metadata))
        return stored

    def store_prompt(
        self,
        prompt_index: int,
        images: Sequence[tuple[bytes, ImageFormat, str | None]],
        common: Mapping[str, Any],
    ) -> list[StoredImage]:
        """Write all images of one prompt, then their sidecars, then drop stale files of the prompt.

        :param prompt_index: the prompt's position in the operator's prompt list.
        :param images: per image, its bytes, its sniffed format and its revised prompt.
        :param common: sidecar fields shared by the prompt's images (prompt, model, params,
            created, usage, request id...).
        :return: the stored images in image order.
        """
        sidecars = []
        for image_index, (data, fmt, revised_prompt) in enumerate(images):
            name = image_name(prompt_index, image_index, fmt.extension)
            write_atomic(self.path / name, data)
            metadata = {
                **common,
                "prompt_index": prompt_index,
                "image_index": image_index,
                "image_count": len(images),
                "revised_prompt": revised_prompt,
                "image": name,
                "media_type": fmt.media_type,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                **self._identity_fields(),
            }
            sidecars.append((name, sidecar_name(prompt_index, image_index), _json_normalised(metadata)))
        # Only now the sidecars: whoever sees one may trust every image of the prompt.
        for _, metadata_name, metadata in sidecars:
            write_atomic(self.path / metadata_name, _encode(metadata))
        written = {name for entry in sidecars for name in entry[:2]}
        stale = [n for n in self._listing if n.startswith(f"{prompt_index:04d}-") and n not in written]
        remove_files(self.path, stale)  # e.g. a .png from an older try that now returned a .webp
        return [self._stored(name, metadata_name, metadata) for name, metadata_name, metadata in sidecars]

    def _identity_fields(self) -> dict[str, Any]:
        ident = self.identity
        return {
            "dag_id": ident.dag_id,
            "run_id": ident.run_id,
            "task_id": ident.task_id,
            "map_index": ident.map_index,
            "try_number": ident.try_number,
            "generator": f"airflow-provider-azerion {__version__}",
        }

    def _read_sidecar(self, prompt_index: int, image_index: int) -> dict[str, Any] | None:
        name = sidecar_name(prompt_index, image_index)
        if name not in self._listing:
            return None
        try:
            metadata = json.loads(self.path.fs.cat_file((self.path / name).path))
        except (OSError, ValueError):
            return None  # unreadable or torn sidecar: treat the prompt as not stored
        return metadata if isinstance(metadata, dict) else None

    def _stored(self, name: str, metadata_name: str, metadata: dict[str, Any]) -> StoredImage:
        return StoredImage(
            uri=storage_uri(self.path / name),
            metadata_uri=storage_uri(self.path / metadata_name),
            metadata=metadata,
        )


def _json_normalised(value: Any) -> Any:
    # Compare and store exactly what a JSON round trip gives back (tuples become lists...).
    return json.loads(json.dumps(value))


def _encode(metadata: Mapping[str, Any]) -> bytes:
    return json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
