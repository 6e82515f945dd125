"""The images one review puts to a person: where they come from, their options, and the request's body.

A review takes what :class:`~airflow_provider_azerion.operators.image_generation.ImageGenerationOperator`
returns: its XCom (a dict), one of its ``chunks``, or a list of either (a mapped generation's
outputs). Every source is read through its manifest, whose lines are the images' full sidecars:
they name the task instance that made each image, which the thumbnails' URLs need, and they are
what is in storage now. The image count is checked against the review's limit before anything is
read.

Each image becomes one option, ``"<file name>: <prompt>"`` (the name followed by the generating
task and map index when the images come from several folders), and one thumbnail in the body,
served by the Images tab's routes so that the reviewer's own session and permissions apply: the
body never holds a signed URL, a key or a connection id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_azerion.exceptions import AzerionConfigurationError
from airflow_provider_azerion.manifest import read_manifest
from airflow_provider_azerion.sidecar import StoredImage

#: Most characters of a prompt shown in an option.
PROMPT_CHARS = 80
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ReviewItem:
    """One image under review.

    :param image: the image as stored: ``uri``, ``metadata_uri`` and its sidecar's fields.
    :param option: its option in the request.
    """

    image: StoredImage
    option: str

    @property
    def name(self) -> str:
        """The image's file name."""
        return str(self.image.metadata["image"])

    @property
    def folder_uri(self) -> str:
        """The folder the image is in."""
        return self.image.uri.rsplit("/", 1)[0]

    def route(self, base_path: str, kind: str) -> str:
        """The Images tab's URL of the image (``kind``: ``images`` or ``thumbnails``), versioned."""
        meta = self.image.metadata
        map_index = meta.get("map_index")
        path = "/".join(
            [
                f"{base_path}/azerion/dags",
                quote(str(meta["dag_id"]), safe=""),
                "runs",
                quote(str(meta["run_id"]), safe=""),
                "tasks",
                quote(str(meta["task_id"]), safe=""),
                str(-1 if map_index is None else map_index),
                kind,
                quote(self.name, safe=""),
            ]
        )
        return f"{path}?v={quote(str(meta.get('sha256') or ''), safe='')}"


def count_of(images: Any) -> int:
    """How many images ``images`` holds, from the XComs alone (nothing is read)."""
    return sum(_count(source) for source in _sources(images))


def load(images: Any, conn_id: str | None = None) -> list[ReviewItem]:
    """The images under review, in source then manifest order, with their options."""
    stored: list[StoredImage] = []
    for source in _sources(images):
        chunk = {key: source[key] for key in ("manifest_uri", "start", "stop", "byte_range") if key in source}
        for entry in read_manifest(**chunk, conn_id=conn_id):
            stored.append(StoredImage(entry["uri"], entry["metadata_uri"], entry))
    # Images of several folders (a mapped generation) share file names: name the source of each.
    several = len({image.uri.rsplit("/", 1)[0] for image in stored}) > 1
    items = []
    for image in stored:
        meta = image.metadata
        label = meta["image"]
        if several:
            map_index = meta.get("map_index")
            suffix = f"[{map_index}]" if map_index is not None and map_index >= 0 else ""
            label = f"{label} ({meta.get('task_id')}{suffix})"
        items.append(ReviewItem(image, f"{label}: {_short(str(meta.get('prompt') or ''))}"))
    if len({item.option for item in items}) != len(items):
        raise AzerionConfigurationError(
            "the images to review include the same image more than once; pass each generation task's "
            "output (or each chunk) once"
        )
    return items


def body(intro: str | None, items: Iterable[ReviewItem], base_path: str) -> str:
    """The request's Markdown: ``intro``, then each image's name, prompt and thumbnail.

    Prompts are escaped: a prompt cannot add a link, an image or markup to the body.
    """
    parts = [intro.strip()] if intro and intro.strip() else []
    parts.append(
        "Choose the images to **approve**; every image not chosen is rejected (a chosen image is "
        "approved even if `Reject all` stays selected). `Approve all` approves every image; "
        "`Reject all` alone rejects every one and skips publishing. Click a thumbnail for the full image."
    )
    for item in items:
        thumb = item.route(base_path, "thumbnails")
        full = item.route(base_path, "images")
        prompt = _escape(str(item.image.metadata.get("prompt") or ""))
        parts.append(f"**{_escape(item.name)}**: {prompt}\n\n[![{_escape(item.name)}]({thumb})]({full})")
    return "\n\n".join(parts)


def _sources(images: Any) -> list[Mapping[str, Any]]:
    if isinstance(images, Mapping):
        images = [images]
    elif isinstance(images, (str, bytes)) or not isinstance(images, Iterable):
        raise AzerionConfigurationError(_SHAPE_ERROR.format(kind=type(images).__name__))
    sources = list(images)
    for source in sources:
        if not isinstance(source, Mapping) or "manifest_uri" not in source:
            raise AzerionConfigurationError(_SHAPE_ERROR.format(kind=type(source).__name__))
    return sources


def _count(source: Mapping[str, Any]) -> int:
    if "count" in source:
        return int(source["count"])
    if "stop" in source:
        return int(source["stop"]) - int(source.get("start") or 0)
    raise AzerionConfigurationError(_SHAPE_ERROR.format(kind="dict without count or stop"))


def _short(prompt: str) -> str:
    text = _WHITESPACE.sub(" ", prompt).strip()
    return text if len(text) <= PROMPT_CHARS else text[: PROMPT_CHARS - 1].rstrip() + "…"


def _escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _WHITESPACE.sub(" ", text).strip())


_SHAPE_ERROR = (
    "images must be what ImageGenerationOperator returns (its XCom, e.g. images=generate.output), "
    "one of its chunks, or a list of those; got {kind}"
)
