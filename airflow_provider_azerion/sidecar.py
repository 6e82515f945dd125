"""The one sidecar schema: what is recorded about each stored image, and how it is encoded.

Every image ``NNNN-J.<ext>`` has a JSON sidecar ``NNNN-J.json`` (names in :mod:`.layout`). Its
fields, written by the operator and read by resume, the manifest, downstream tasks and the
Images tab:

``prompt``, ``prompt_index``, ``image_index``, ``image_count`` (images of the prompt),
``revised_prompt``, ``model``, ``style``, ``params`` (everything sent besides the prompt),
``image`` (the image's file name), ``media_type``, ``bytes``, ``sha256``, ``width`` and
``height`` (pixels, when the image states them), ``created``, ``usage``, ``request_id``, and the
task instance: ``dag_id``, ``run_id``, ``task_id``, ``map_index``, ``try_number``, ``generator``.

Light on purpose (standard library only): the Images tab reads sidecars too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    "width",
    "height",
    "created",
)
#: Sidecars larger than this are not read (nothing the operator writes comes close).
MAX_SIDECAR_BYTES = 1024 * 1024


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

    @property
    def key(self) -> tuple[int, int]:
        """``(prompt_index, image_index)``: the image's place in the task's order."""
        return self.metadata["prompt_index"], self.metadata["image_index"]

    def to_xcom(self) -> dict[str, Any]:
        """The plain, small dict pushed to XCom: locations and facts, never image bytes."""
        return {"uri": self.uri, "metadata_uri": self.metadata_uri} | {
            name: self.metadata.get(name) for name in XCOM_FIELDS
        }


def image_fields(
    data: bytes, name: str, media_type: str, dimensions: tuple[int, int] | None
) -> dict[str, Any]:
    """The sidecar fields that describe one image's bytes.

    :param data: the image bytes.
    :param name: the image's file name.
    :param media_type: its real media type (sniffed from the bytes).
    :param dimensions: its ``(width, height)``, or ``None`` when the bytes do not state them.
    """
    width, height = dimensions if dimensions is not None else (None, None)
    return {
        "image": name,
        "media_type": media_type,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "width": width,
        "height": height,
    }


def encode(metadata: Mapping[str, Any]) -> bytes:
    """A sidecar file's contents: indented, sorted JSON in UTF-8."""
    return json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


def parse(data: bytes | str) -> dict[str, Any] | None:
    """A sidecar's fields, or ``None`` when ``data`` is not a JSON object (a torn or foreign file)."""
    try:
        metadata = json.loads(data)
    except ValueError:
        return None
    return metadata if isinstance(metadata, dict) else None


def json_normalised(value: Any) -> Any:
    """``value`` as a JSON round trip gives it back (tuples become lists...): what sidecars hold."""
    return json.loads(json.dumps(value))
