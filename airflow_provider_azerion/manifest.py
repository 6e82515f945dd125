"""The one manifest reader and writer: ``manifest.jsonl``, the index of a task's folder.

One JSON object per line, each exactly the sidecar of one image (:mod:`.sidecar`), for every
image of the task, in prompt then image order. A try writes it atomically once its images are
stored (also when it fails after storing some). Invariant: every line describes files exactly as
they are in storage; a try about to replace files of a prompt it lists first rewrites it without
them.

It serves three readers: a retry resumes with one listing and one read (:mod:`.resume`), the
Images tab shows a folder without reading each sidecar, and downstream tasks read the images of a
large batch, or one chunk of it (:func:`read_manifest`, :func:`images_of`).

Light on purpose (standard library only, ``ObjectStoragePath`` imported inside the readers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from airflow_provider_azerion.layout import child_uri, sidecar_name


class ManifestLine(NamedTuple):
    """One line of a manifest: the image it lists, its size in bytes, and its sidecar object.

    ``key`` and ``metadata`` are ``None`` for a line that is not an image's sidecar (torn by a
    crash, or written by something else): such a manifest must be rewritten before it is trusted.
    """

    key: tuple[int, int] | None
    size: int
    metadata: dict[str, Any] | None


def parse_lines(data: bytes) -> list[ManifestLine]:
    """Every line of a manifest, in file order."""
    lines = []
    for raw in data.splitlines(keepends=True):
        try:
            metadata = json.loads(raw)
            key = (metadata["prompt_index"], metadata["image_index"])
            if not all(isinstance(part, int) and not isinstance(part, bool) for part in key):
                raise TypeError
            if not isinstance(metadata.get("image"), str):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            lines.append(ManifestLine(None, len(raw), None))
            continue
        lines.append(ManifestLine(key, len(raw), metadata))
    return lines


def encode_line(metadata: Mapping[str, Any]) -> bytes:
    """One manifest line: the sidecar object as compact, sorted JSON, newline-terminated."""
    return json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"


def entry(folder_uri: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What a downstream task gets for one image: its sidecar's fields, ``uri`` and ``metadata_uri``."""
    return {
        **metadata,
        "uri": child_uri(folder_uri, metadata["image"]),
        "metadata_uri": child_uri(
            folder_uri, sidecar_name(metadata["prompt_index"], metadata["image_index"])
        ),
    }


def read_manifest(
    manifest_uri: str,
    start: int = 0,
    stop: int | None = None,
    byte_range: Sequence[int] | None = None,
    *,
    conn_id: str | None = None,
) -> list[dict[str, Any]]:
    """Read the images of a task (or one chunk of them) from its manifest, in a downstream task.

    Takes a chunk of the XCom as keyword arguments: ``read_manifest(**chunk, conn_id="aws_default")``.
    With ``byte_range`` only those bytes are fetched, so a task mapped over one chunk of a large
    manifest does not download all of it.

    :param manifest_uri: the XCom's ``manifest_uri`` (or a chunk's).
    :param start: index of the first image wanted (0-based, in manifest order).
    :param stop: index after the last image wanted; ``None`` for up to the end.
    :param byte_range: ``[first byte, end byte)`` of lines ``start`` to ``stop`` in the manifest.
    :param conn_id: Airflow connection of the store (the operator's ``output_conn_id``); URIs in
        XComs never carry one.
    :return: one dict per image: its sidecar's fields plus ``uri`` and ``metadata_uri``.
    :raises FileNotFoundError: when there is no manifest at ``manifest_uri``.
    :raises ValueError: when the manifest no longer has those lines (it was rewritten since).
    """
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(manifest_uri, conn_id=conn_id)
    try:
        if byte_range is not None:
            first, end = byte_range
            data = path.fs.cat_file(path.path, start=first, end=end) if end > first else b""
        else:
            data = path.fs.cat_file(path.path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no manifest at {manifest_uri}: the task that wrote it may have been cleared since. "
            "Rerun that task, then this one"
        ) from None
    lines = parse_lines(data)
    if byte_range is None:
        lines = lines[start:stop]
    elif stop is not None and len(lines) != stop - start:
        raise ValueError(
            f"{manifest_uri} no longer holds images {start} to {stop} at bytes {list(byte_range)}: the "
            "task that wrote it ran again since. Rerun this task so that it reads the new XCom"
        )
    folder_uri = manifest_uri.rsplit("/", 1)[0]
    entries = []
    for line in lines:
        if line.metadata is None:
            raise ValueError(
                f"{manifest_uri} has a line that is not an image's sidecar; it was changed by something "
                "other than the operator. Rerun the task that wrote it"
            )
        entries.append(entry(folder_uri, line.metadata))
    return entries


def images_of(result: Mapping[str, Any], *, conn_id: str | None = None) -> list[dict[str, Any]]:
    """All images of a task, from its XCom ``result``: its ``images`` if present, else its manifest.

    Lets downstream code work the same for a batch of three images and one of ten thousand.

    :param result: the operator's XCom (a dict with ``manifest_uri`` and, for small batches, ``images``).
    :param conn_id: Airflow connection of the store, needed only when the manifest is read.
    """
    if "images" in result:
        return list(result["images"])
    return read_manifest(result["manifest_uri"], conn_id=conn_id)
