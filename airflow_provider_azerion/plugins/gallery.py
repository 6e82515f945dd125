"""What a task instance's folder holds, read the way the operator wrote it.

The folder is the only source: it holds what every try stored, including tries that failed or
are still running (a task's XCom exists only after a successful try). One listing gives the file
names; each image ``NNNN-J.<ext>`` is described by its sidecar ``NNNN-J.json``. When the folder
has a ``manifest.jsonl`` (one sidecar object per line, written at the end of a successful try),
its lines stand in for the sidecars of images whose size still matches, which saves one read per
image on object stores; images written after it (a later try) are read from their sidecars.

Only names matching the operator's pattern count (:mod:`airflow_provider_azerion.layout`):
hidden temporary files (``.*.partial``) and anything else in the folder are ignored, and a name
is never taken from a sidecar's contents unless the listing has it too. Sidecars and manifest
lines are parsed by the provider's own readers (:mod:`~airflow_provider_azerion.sidecar`,
:mod:`~airflow_provider_azerion.manifest`).

Asked for, it also counts what all the folder's images cost (:mod:`.spend`), not only those of the
page: sizes from the listing, usage from the manifest and the sidecars already read, plus one
sidecar per prompt neither describes.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion import reviews as review_records
from airflow_provider_azerion import sidecar as sidecars
from airflow_provider_azerion.image_formats import HEAD_BYTES, SHORT_HEAD_BYTES, image_dimensions
from airflow_provider_azerion.layout import (
    MANIFEST_NAME,
    child_uri,
    is_image_name,
    is_review_name,
    order_key,
    parse_name,
    sidecar_of,
)
from airflow_provider_azerion.manifest import ManifestLine, parse_lines
from airflow_provider_azerion.plugins.spend import Spend, tally
from airflow_provider_azerion.redact import public_uri, scrub
from airflow_provider_azerion.storage import LOCAL_PROTOCOLS

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Manifests larger than this are ignored (the sidecars are read instead).
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
#: Files of one folder read at once from a remote store.
READ_CONCURRENCY = 8


@dataclass(frozen=True)
class StoredImage:
    """One image of a task instance's folder.

    :param name: its file name in the folder.
    :param bytes: its size, from the listing.
    :param metadata: its sidecar (or manifest line); empty when it has none yet.
    :param sidecar: the sidecar's file name, when the folder has it.
    :param uri: the image's plain URI (no connection id, user or query string).
    :param dimensions: width and height in pixels, when known.
    """

    name: str
    bytes: int
    metadata: Mapping[str, Any]
    sidecar: str | None
    uri: str
    dimensions: tuple[int, int] | None = None

    @property
    def sha256(self) -> str | None:
        """The checksum the sidecar records, if any."""
        value = self.metadata.get("sha256")
        return value if isinstance(value, str) else None


@dataclass
class FolderContents:
    """What one task instance's folder holds (or why it could not be read).

    :param uri: the folder's plain URI.
    :param image_names: every image file name, in prompt then image order.
    :param images: the images described, for the names asked for (a page of them).
    :param error: why the folder could not be read; ``None`` when it was.
    :param spend: what every image of the folder cost (not only those described), when asked for
        and the folder could be read.
    :param reviews: for each image a review has covered, the review record that last spoke of it.
    """

    uri: str
    image_names: list[str] = field(default_factory=list)
    images: list[StoredImage] = field(default_factory=list)
    error: str | None = None
    spend: Spend | None = None
    reviews: dict[str, review_records.ReviewRecord] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many images the folder holds."""
        return len(self.image_names)


def read_folder(
    folder: ObjectStoragePath,
    *,
    offset: int = 0,
    limit: int | None = None,
    dimensions: DimensionCache | None = None,
    spend: bool = False,
) -> FolderContents:
    """List a task instance's folder and describe its images (a slice of them).

    :param folder: the task instance's folder.
    :param offset: index of the first image to describe, in prompt then image order.
    :param limit: how many images to describe; ``None`` for all. Only these are read.
    :param dimensions: where pixel sizes are remembered between pages; read from the images'
        first bytes when neither their sidecar nor this knows them.
    :param spend: also count what all the folder's images cost (:mod:`.spend`): from the manifest
        and the sidecars already read, plus one sidecar per prompt neither describes.
    :return: the contents; ``error`` says why the folder could not be read, if it could not.
    """
    from airflow_provider_azerion.storage import list_files, storage_uri

    contents = FolderContents(uri=public_uri(storage_uri(folder)))
    try:
        listing = list_files(folder)
    except Exception as err:
        contents.error = _describe(err)
        return contents
    names = sorted((name for name in listing if is_image_name(name)), key=order_key)
    if folder.protocol in LOCAL_PROTOCOLS:  # the operator writes no links; one could point anywhere
        names = [name for name in names if not os.path.islink((folder / name).path)]
    contents.image_names = names
    chosen = names[offset : None if limit is None else offset + limit]
    if not chosen and not (spend and names):
        contents.spend = Spend() if spend else None
        return contents
    try:
        manifest = _manifest_entries(folder, listing)
        metadata = _metadata(folder, listing, chosen, manifest)
        if spend:
            contents.spend = _spend(folder, listing, names, manifest, metadata)
    except Exception as err:
        contents.error = _describe(err)
        return contents
    images = [
        StoredImage(
            name=name,
            bytes=listing[name],
            metadata=metadata.get(name, {}),
            sidecar=sidecar_of(name) if sidecar_of(name) in listing else None,
            uri=child_uri(contents.uri, name),
        )
        for name in chosen
    ]
    contents.images = _with_dimensions(folder, images, dimensions or DimensionCache())
    contents.reviews = _reviews(folder, listing)
    return contents


def _reviews(folder: ObjectStoragePath, listing: Mapping[str, int]) -> dict[str, review_records.ReviewRecord]:
    """What the folder's review records say, per image (nothing when it has none)."""
    names = [n for n in listing if is_review_name(n) and 0 < listing[n] <= review_records.MAX_RECORD_BYTES]
    contents = read_many(folder, [(name, None) for name in names])
    found = (review_records.parse(data) for data in contents if isinstance(data, bytes))
    return review_records.latest_states(record for record in found if record is not None)


def _manifest_entries(folder: ObjectStoragePath, listing: Mapping[str, int]) -> dict[str, dict]:
    """The manifest's lines that still describe their image, by image name (none without one)."""
    found: dict[str, dict] = {}
    if not 0 < listing.get(MANIFEST_NAME, 0) <= MAX_MANIFEST_BYTES:
        return found
    for line in _manifest_lines(folder):
        entry = line.metadata  # None for a torn line
        # A line describes the file only if the file still has the size it records: a later
        # try may have replaced the image (and its sidecar) since the manifest was written.
        if entry is not None and listing.get(entry["image"]) == entry.get("bytes"):
            found[entry["image"]] = entry
    return found


def _metadata(
    folder: ObjectStoragePath, listing: Mapping[str, int], names: list[str], manifest: Mapping[str, dict]
) -> dict[str, dict]:
    """Sidecar contents of ``names``: from the manifest when it is current, else from the sidecars."""
    found = {name: manifest[name] for name in names if name in manifest}
    return found | _read_sidecars(folder, listing, [name for name in names if name not in found])


def _read_sidecars(
    folder: ObjectStoragePath, listing: Mapping[str, int], names: list[str]
) -> dict[str, dict]:
    """The sidecars of ``names`` that the folder lists and that parse, by image name."""
    to_read = [name for name in names if 0 < listing.get(sidecar_of(name), 0) <= sidecars.MAX_SIDECAR_BYTES]
    found: dict[str, dict] = {}
    contents = read_many(folder, [(sidecar_of(name), None) for name in to_read])
    for name, content in zip(to_read, contents, strict=True):
        metadata = None if isinstance(content, BaseException) else sidecars.parse(content)
        if metadata is not None:  # else unreadable, torn or not a sidecar: shown without it
            found[name] = metadata
    return found


def _spend(
    folder: ObjectStoragePath,
    listing: Mapping[str, int],
    names: list[str],
    manifest: Mapping[str, dict],
    known: Mapping[str, dict],
) -> Spend:
    """What all ``names`` cost. Every image of a prompt shares its usage, so a prompt that neither
    the manifest nor the sidecars already read describe costs one more read: its first listed
    sidecar (its other images then count as images and bytes only)."""
    described = dict(manifest) | dict(known)
    covered = {_prompt(name) for name in names if name in described}
    first_of: dict[int, str] = {}
    for name in names:
        prompt = _prompt(name)
        if prompt not in covered and prompt not in first_of and sidecar_of(name) in listing:
            first_of[prompt] = name
    described |= _read_sidecars(folder, listing, list(first_of.values()))
    return tally((listing[name], described.get(name)) for name in names)


def _prompt(name: str) -> int:
    key = parse_name(name)
    return key.prompt_index if key is not None else -1


def _manifest_lines(folder: ObjectStoragePath) -> list[ManifestLine]:
    try:
        return parse_lines(folder.fs.cat_file((folder / MANIFEST_NAME).path))
    except OSError:
        return []


def read_many(folder: ObjectStoragePath, files: list[tuple[str, int | None]]) -> list[bytes | Exception]:
    """Read several files of ``folder`` at once (a few at a time: object stores are slow per request).

    :param folder: the folder.
    :param files: per file, its name and how many leading bytes to read (``None``: all of it).
    :return: per file, its bytes or the exception reading it raised.
    """
    from concurrent.futures import ThreadPoolExecutor

    fs = folder.fs

    def read(name: str, end: int | None) -> bytes | Exception:
        try:
            return fs.cat_file((folder / name).path, start=0 if end else None, end=end)
        except Exception as err:
            return err

    if len(files) <= 1 or folder.protocol in LOCAL_PROTOCOLS:
        return [read(name, end) for name, end in files]
    with ThreadPoolExecutor(max_workers=min(READ_CONCURRENCY, len(files))) as pool:
        return list(pool.map(lambda item: read(*item), files))


def _with_dimensions(
    folder: ObjectStoragePath, images: list[StoredImage], cache: DimensionCache
) -> list[StoredImage]:
    """``images`` with their pixel sizes: recorded, remembered, or read from their first bytes."""
    sizes: dict[str, tuple[int, int] | None] = {}
    to_read = []
    for image in images:
        recorded = _recorded_dimensions(image.metadata)
        known = recorded or cache.get(_dimension_key(image))
        if known is not None:
            sizes[image.name] = known
        else:
            to_read.append(image)
    # Most images state their size in their first bytes; a JPEG with large metadata further on.
    for head_bytes in (SHORT_HEAD_BYTES, HEAD_BYTES):
        if not to_read:
            break
        heads = read_many(folder, [(image.name, head_bytes) for image in to_read])
        unknown = []
        for image, head in zip(to_read, heads, strict=True):
            size = image_dimensions(head) if isinstance(head, bytes) else None
            sizes[image.name] = size
            if size is not None:
                cache.put(_dimension_key(image), size)
            elif isinstance(head, bytes) and len(head) == head_bytes:
                unknown.append(image)  # cut short: look further
        to_read = unknown
    return [
        StoredImage(image.name, image.bytes, image.metadata, image.sidecar, image.uri, sizes.get(image.name))
        for image in images
    ]


def _recorded_dimensions(metadata: Mapping[str, Any]) -> tuple[int, int] | None:
    width, height = metadata.get("width"), metadata.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    return None


def _dimension_key(image: StoredImage) -> tuple[str, int, str | None]:
    return (image.uri, image.bytes, image.sha256)


def _describe(err: BaseException) -> str:
    """An error as a person reads it: URLs' query strings elided, any secret Airflow knows masked."""
    text = scrub(f"{type(err).__name__}: {err}")
    try:
        from airflow._shared.secrets_masker import redact
    except ImportError:  # pragma: no cover - layout of a future Airflow
        return text
    return str(redact(text))


class DimensionCache:
    """Pixel sizes of images already seen, so that a page is not read twice (thread-safe, LRU).

    :param max_entries: how many images to remember.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._sizes: OrderedDict[tuple, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[int, int] | None:
        """The remembered size of an image version, if any."""
        with self._lock:
            size = self._sizes.get(key)
            if size is not None:
                self._sizes.move_to_end(key)
            return size

    def put(self, key: tuple, size: tuple[int, int]) -> None:
        """Remember the size of an image version."""
        with self._lock:
            self._sizes[key] = size
            self._sizes.move_to_end(key)
            while len(self._sizes) > self.max_entries:
                self._sizes.popitem(last=False)
