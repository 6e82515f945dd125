"""The folder layout of an image-generation task: every file name, built and parsed here only.

One task instance owns one folder::

    {output_path}/{dag_id}/{run_id}/{task_id}[-{map_index}]/
        0000-0.png   0000-0.json   # prompt 0, image 0 and its sidecar
        0001-0.webp  0001-0.json
        0001-1.webp  0001-1.json   # prompt 1 produced two images
        manifest.jsonl             # one line per image: its sidecar, in prompt then image order
        review-{task_id}[-{map_index}].json  # a review task's request and decision (ImageReviewOperator)
        .0002-0.png.<token>.partial  # a write in progress (hidden; removed by the next try)

Names are deterministic for a task instance (a retry finds its predecessor's files) and distinct
across runs, map indexes and prompts. The operator builds names with the functions below and the
Images tab parses them with the same ones, so the two can never disagree.

Light on purpose (standard library only): the Images tab and the operator both import it.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from typing import NamedTuple

#: The folder's index: one sidecar object per line.
MANIFEST_NAME = "manifest.jsonl"
#: A review task's request and decision about the folder's images: ``review-{task}[-{map}].json``.
REVIEW_PREFIX = "review-"
REVIEW_SUFFIX = ".json"
#: Suffix of the hidden temporary files written before a rename.
TEMP_SUFFIX = ".partial"
#: Image extensions the operator writes (from the bytes' real format), ``jpeg`` read as well.
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "gif")

_IMAGE_NAME = re.compile(r"(?P<prompt>\d{4,9})-(?P<image>\d{1,4})\.(?P<ext>png|jpg|jpeg|webp|gif)")
_SIDECAR_NAME = re.compile(r"(?P<prompt>\d{4,9})-(?P<image>\d{1,4})\.json")
_REVIEW_NAME = re.compile(r"review-[A-Za-z0-9._=-]+\.json")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._=-]")


class FileKey(NamedTuple):
    """What a file of the layout is: its prompt, its image, and whether it is the sidecar."""

    prompt_index: int
    image_index: int
    is_sidecar: bool


def prompt_prefix(prompt_index: int) -> str:
    """The part every file name of prompt ``prompt_index`` starts with (before the first ``-``)."""
    return f"{prompt_index:04d}"


def image_name(prompt_index: int, image_index: int, extension: str) -> str:
    """File name of image ``image_index`` of prompt ``prompt_index``."""
    return f"{prompt_prefix(prompt_index)}-{image_index}.{extension}"


def sidecar_name(prompt_index: int, image_index: int) -> str:
    """File name of the JSON sidecar of image ``image_index`` of prompt ``prompt_index``."""
    return f"{prompt_prefix(prompt_index)}-{image_index}.json"


def sidecar_of(image: str) -> str:
    """The sidecar's file name of an image file name (``0001-0.png`` -> ``0001-0.json``)."""
    return image.rsplit(".", 1)[0] + ".json"


def parse_name(name: str) -> FileKey | None:
    """The prompt and image an image or sidecar file name belongs to; ``None`` for any other name."""
    match = _IMAGE_NAME.fullmatch(name)
    if match is not None:
        return FileKey(int(match["prompt"]), int(match["image"]), False)
    match = _SIDECAR_NAME.fullmatch(name)
    if match is not None:
        return FileKey(int(match["prompt"]), int(match["image"]), True)
    return None


def is_image_name(name: str) -> bool:
    """Whether ``name`` is an image file name the operator writes (and nothing else)."""
    return _IMAGE_NAME.fullmatch(name) is not None


def is_sidecar_name(name: str) -> bool:
    """Whether ``name`` is a sidecar file name the operator writes (and nothing else)."""
    return _SIDECAR_NAME.fullmatch(name) is not None


def review_name(task_id: str, map_index: int | None = -1) -> str:
    """File name of the record a review task instance writes into each folder it reviews.

    One file per review task instance, so reviews mapped over chunks of one folder never write
    the same file.
    """
    task = sanitize_segment(task_id)
    if map_index is not None and map_index >= 0:
        task += f"-{map_index}"
    return f"{REVIEW_PREFIX}{task}{REVIEW_SUFFIX}"


def is_review_name(name: str) -> bool:
    """Whether ``name`` is a review record's file name (and nothing else)."""
    return _REVIEW_NAME.fullmatch(name) is not None


def order_key(name: str) -> tuple[int, int]:
    """Sort key of an image or sidecar name: prompt then image order (others first)."""
    key = parse_name(name)
    return (key.prompt_index, key.image_index) if key else (-1, -1)


def sanitize_segment(value: object) -> str:
    """Make one path segment safe on every store from a templated value such as a run id.

    Anything outside ``[A-Za-z0-9._=-]`` becomes ``_`` (run ids carry ``:`` and ``+``), ``..``
    never survives, a leading dot is replaced so the result is never a hidden name (hidden names
    are reserved for temporary files), and an empty value becomes ``_``.
    """
    text = _UNSAFE_CHARS.sub("_", str(value)).replace("..", "__")
    if text.startswith("."):
        text = "_" + text[1:]
    return text or "_"


def task_segments(dag_id: str, run_id: str, task_id: str, map_index: int | None = -1) -> tuple[str, ...]:
    """The folder of a task instance below ``output_path``, as path segments.

    :param map_index: ``-1`` (or ``None``) for a task that is not mapped.
    """
    task = sanitize_segment(task_id)
    if map_index is not None and map_index >= 0:
        task += f"-{map_index}"
    return sanitize_segment(dag_id), sanitize_segment(run_id), task


def child_uri(folder_uri: str, name: str) -> str:
    """The URI of file ``name`` inside the folder whose plain URI is ``folder_uri``.

    String work only: building an ``ObjectStoragePath`` per file costs 0.1-0.2 ms, which adds up
    to seconds for a task of ten thousand images.
    """
    return f"{folder_uri.rstrip('/')}/{name}"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file left by an interrupted write."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


# A random token per process, plus the pid: workers in containers on different hosts (all pid 1,
# say) writing into one shared folder never pick the same temporary name, and neither do processes
# forked from one parent (their pids differ). The counter makes names unique within a process.
_PROCESS_TOKEN = uuid.uuid4().hex[:12]
_TEMP_COUNTER = itertools.count()


def temp_name(name: str) -> str:
    """A new hidden temporary name for a write of ``name``, unique across processes and hosts."""
    return f".{name}.{_PROCESS_TOKEN}{os.getpid():x}-{next(_TEMP_COUNTER)}{TEMP_SUFFIX}"
