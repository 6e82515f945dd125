"""What a task publishes about its images: its XCom and its asset events' ``extra``, bounded in size.

The XCom stays within :data:`XCOM_LIMIT` bytes at any batch size: the folder, the manifest, the
image count, ``chunks`` of the manifest to map downstream tasks over, and the per-image entries as
long as they all fit. Asset events stay within :data:`ASSET_EXTRA_LIMIT` (every scheduler loop
reads them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow_provider_azerion.sidecar import StoredImage

#: Most bytes a task's XCom takes, as JSON, whatever the number of images.
XCOM_LIMIT = 64 * 1024
#: Most bytes an asset event's ``extra`` takes, as JSON: events are read by every scheduler loop.
ASSET_EXTRA_LIMIT = 16 * 1024
#: Images per chunk of the manifest, at least; more when that many chunks would not fit the XCom.
CHUNK_IMAGES = 100
#: Share of the XCom the ``chunks`` list may take.
_CHUNKS_BUDGET = 32 * 1024


def task_result(
    folder_uri: str,
    manifest_uri: str,
    images: Sequence[StoredImage],
    line_sizes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The task's XCom: at most :data:`XCOM_LIMIT` bytes as JSON, whatever the number of images.

    Keys: ``folder_uri``, ``manifest_uri``, ``count`` (images), ``chunks`` (ranges of the
    manifest to map downstream tasks over: ``manifest_uri``, ``start``, ``stop`` and, when
    known, ``byte_range``; pass one to :func:`~airflow_provider_azerion.manifest.read_manifest`)
    and, only when every entry fits, ``images``: one dict per image
    (:meth:`~airflow_provider_azerion.sidecar.StoredImage.to_xcom`), in prompt then image order.

    :param images: every image of the task, in the order of the manifest.
    :param line_sizes: the byte length of each manifest line, when the manifest in storage lists
        exactly ``images`` (then chunks carry byte ranges).
    """
    result: dict[str, Any] = {
        "folder_uri": folder_uri,
        "manifest_uri": manifest_uri,
        "count": len(images),
        "chunks": _chunks(manifest_uri, len(images), line_sizes),
    }
    room = XCOM_LIMIT - _json_size(result) - len(', "images": []')
    entries = []
    for image in images:
        entry = image.to_xcom()
        room -= _json_size(entry) + 2  # the separator
        if room < 0:
            break
        entries.append(entry)
    else:
        result["images"] = entries
    return result


def _chunks(manifest_uri: str, count: int, line_sizes: Sequence[int] | None) -> list[dict[str, Any]]:
    offsets = [0]
    for size in line_sizes or []:
        offsets.append(offsets[-1] + size)
    size = CHUNK_IMAGES
    while True:
        chunks = []
        for start in range(0, count, size):
            stop = min(start + size, count)
            chunk: dict[str, Any] = {"manifest_uri": manifest_uri, "start": start, "stop": stop}
            if line_sizes is not None:
                chunk["byte_range"] = [offsets[start], offsets[stop]]
            chunks.append(chunk)
        if _json_size(chunks) <= _CHUNKS_BUDGET or len(chunks) <= 1:
            return chunks
        size *= 2


def asset_extra(folder_uri: str, manifest_uri: str, images: Sequence[StoredImage]) -> dict[str, Any]:
    """The ``extra`` of the task's asset events: at most :data:`ASSET_EXTRA_LIMIT` bytes as JSON.

    ``folder_uri``, ``manifest_uri``, ``count`` and, only when they all fit, ``uris`` (the
    image URIs in manifest order).
    """
    extra: dict[str, Any] = {"folder_uri": folder_uri, "manifest_uri": manifest_uri, "count": len(images)}
    uris = [image.uri for image in images]
    if _json_size(extra) + _json_size(uris) + len(', "uris": ') <= ASSET_EXTRA_LIMIT:
        extra["uris"] = uris
    return extra


def _json_size(value: Any) -> int:
    # As Airflow stores an XCom or an asset event's extra: json.dumps with its defaults.
    return len(json.dumps(value))
