"""Where thumbnails are kept: in memory, on the API server's disk, and in the browser.

A thumbnail is made once per image version (the image's URI, size and modification time) and
kept at three levels:

- :class:`MemoryCache`: an LRU bounded in bytes, per API server worker process. Requests for a
  thumbnail being made wait for it rather than making it again.
- :class:`DiskCache`: files on the API server's disk, shared by its worker processes (the API
  server runs several) and kept across restarts, bounded in bytes. A file lock per key stripe
  makes each thumbnail once across processes too.
- The browser: the page versions each thumbnail URL by the image's checksum, so that URL is
  served as immutable.

The disk cache lives in ``[azerion] thumbnail_cache_dir`` (default: ``azerion-thumbnails-<uid>``
in the system's temporary folder, readable by its owner only). When it cannot be used, thumbnails
are kept in memory only. Nothing is made at import: the folder appears with the first thumbnail,
and the threads making thumbnails ahead of the browser with the first page.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion.plugins.thumbnails import (
    MAX_SOURCE_BYTES,
    Thumbnail,
    ThumbnailError,
    make_thumbnail,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

#: Memory the thumbnails of one API server worker may hold.
MEMORY_BYTES = 64 * 1024 * 1024
#: Disk the thumbnails of an API server may hold; the least recently used go first.
DISK_BYTES = 512 * 1024 * 1024
#: Threads making thumbnails ahead of the browser's requests, and the backlog they may have.
PREPARE_THREADS = max(1, min(4, os.cpu_count() or 1))
MAX_QUEUED = 1000
_DISK_MAGIC = b"AZTHUMB1\n"


class MemoryCache:
    """A thread-safe LRU of thumbnails bounded by their total size, making each one only once.

    :param max_bytes: total size of the thumbnails kept.
    """

    def __init__(self, max_bytes: int = MEMORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, Thumbnail] = OrderedDict()
        self._size = 0
        self._making: dict[Hashable, Future[Thumbnail]] = {}
        self._lock = threading.Lock()
        #: How many times each key's thumbnail was made here (not found in memory), for diagnostics.
        self.made: Counter[Hashable] = Counter()

    def get_or_make(self, key: Hashable, make: Callable[[], Thumbnail]) -> Thumbnail:
        """The cached thumbnail for ``key``, or the one ``make()`` returns, which is then cached.

        :raises ThumbnailError: what ``make`` raised (not cached: a later request tries again).
        """
        with self._lock:
            cached = self._items.get(key)
            if cached is not None:
                self._items.move_to_end(key)
                return cached
            pending = self._making.get(key)
            if pending is None:
                future: Future[Thumbnail] = Future()
                self._making[key] = future
        if pending is not None:
            return pending.result()
        try:
            thumbnail = make()
        except BaseException as err:
            with self._lock:
                del self._making[key]
            future.set_exception(err)
            raise
        with self._lock:
            del self._making[key]
            self.made[key] += 1
            self._put(key, thumbnail)
        future.set_result(thumbnail)
        return thumbnail

    def clear(self) -> None:
        """Forget every thumbnail."""
        with self._lock:
            self._items.clear()
            self._size = 0

    def _put(self, key: Hashable, thumbnail: Thumbnail) -> None:
        size = len(thumbnail.content)
        if size > self.max_bytes:
            return
        self._items[key] = thumbnail
        self._size += size
        while self._size > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._size -= len(evicted.content)


class DiskCache:
    """Thumbnails as files in ``folder``, shared by processes and bounded in bytes.

    :param folder: where to keep them; created if needed.
    :param max_bytes: total size kept; beyond it the least recently used files are removed.
    """

    #: Lock files; thumbnails whose keys share one are made one at a time across processes.
    STRIPES = 1024

    def __init__(self, folder: Path, max_bytes: int = DISK_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # thumbnails are the DAGs' data
        (folder / "locks").mkdir(exist_ok=True)
        self._writes = 0
        self._lock = threading.Lock()

    def get_or_make(self, key: Hashable, make: Callable[[], Thumbnail]) -> Thumbnail:
        """The thumbnail stored for ``key``, or the one ``make()`` returns, which is then stored.

        Another process making the same thumbnail holds its stripe's lock: this waits, then
        reads what it stored.
        """
        name = hashlib.sha256(repr(key).encode()).hexdigest()
        path = self.folder / name[:2] / name
        found = self._read(path)
        if found is not None:
            return found
        with self._stripe_lock(name):
            found = self._read(path)
            if found is not None:
                return found
            thumbnail = make()
            self._write(path, thumbnail)
        return thumbnail

    @contextlib.contextmanager
    def _stripe_lock(self, name: str) -> Iterator[None]:
        import fcntl

        stripe = int(name[:8], 16) % self.STRIPES
        with open(self.folder / "locks" / f"{stripe:04d}", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _read(path: Path) -> Thumbnail | None:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if not data.startswith(_DISK_MAGIC):
            return None
        header, _, content = data[len(_DISK_MAGIC) :].partition(b"\n")
        try:
            meta = json.loads(header)
            thumbnail = Thumbnail(content, meta["media_type"], meta["etag"], tuple(meta["source_size"]))
        except (ValueError, KeyError, TypeError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return thumbnail

    def _write(self, path: Path, thumbnail: Thumbnail) -> None:
        meta = {
            "media_type": thumbnail.media_type,
            "etag": thumbnail.etag,
            "source_size": thumbnail.source_size,
        }
        path.parent.mkdir(exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_bytes(_DISK_MAGIC + json.dumps(meta).encode() + b"\n" + thumbnail.content)
        os.replace(temp, path)
        with self._lock:
            self._writes += 1
            check = self._writes % 200 == 1
        if check:
            self.trim()

    def trim(self) -> None:
        """Remove the least recently used thumbnails until they take at most ``max_bytes``."""
        files = []
        for path in self.folder.glob("??/*"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        if total <= self.max_bytes:
            return
        for _, size, path in sorted(files):  # oldest first, down to 80 %: not again at once
            if total <= self.max_bytes * 0.8:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size


def default_disk_folder() -> Path:
    """``[azerion] thumbnail_cache_dir``, or ``azerion-thumbnails-<uid>`` in the temporary folder."""
    from airflow.configuration import conf

    configured = conf.get("azerion", "thumbnail_cache_dir", fallback="")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"azerion-thumbnails-{os.getuid()}"


@functools.cache
def disk_cache() -> DiskCache | None:
    """The API server's thumbnails on disk, opened (its folder made) on the first thumbnail.

    ``None`` when the folder cannot be used: thumbnails are then kept in memory only.
    """
    folder = default_disk_folder()
    try:
        return DiskCache(folder)
    except OSError as err:
        log.warning("Thumbnails are kept in memory only: cannot use %s (%s)", folder, err)
        return None


@functools.cache
def _preparer() -> ThreadPoolExecutor:
    """The threads making thumbnails ahead of the browser, started by the first page that asks."""
    return ThreadPoolExecutor(max_workers=PREPARE_THREADS, thread_name_prefix="azerion-thumbnails")


#: This API server worker's thumbnails in memory.
MEMORY = MemoryCache()
_queued = 0
_queued_lock = threading.Lock()


def thumbnail_of(path: ObjectStoragePath) -> Thumbnail:
    """The thumbnail of a stored image: from memory, from disk, or made now (once).

    It is cached under the image's URI and version (size and modification time), so a replaced
    image gets a new thumbnail.

    :raises FileNotFoundError: when the image is not there.
    :raises ThumbnailError: when no thumbnail can be made (not a PNG, JPEG, WebP or GIF image, too
        large, or Pillow missing).
    """
    from airflow_provider_azerion.storage import storage_uri

    info = path.fs.info(path.path)
    version = info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("etag")
    key = (storage_uri(path), info.get("size"), str(version))

    def make() -> Thumbnail:
        disk = disk_cache()
        if disk is None:
            return _make_from(path)
        try:
            return disk.get_or_make(key, lambda: _make_from(path))
        except OSError as err:  # a full or read-only disk must not cost the thumbnail
            log.warning("Thumbnail cache on disk failed (%s); making the thumbnail without it", err)
            return _make_from(path)

    return MEMORY.get_or_make(key, make)


def prepare(folder: ObjectStoragePath, names: list[str]) -> None:
    """Start making the thumbnails a page is about to ask for, on a few background threads.

    The browser asks for them a moment later, six at a time (its connection limit); starting now
    keeps the server's cores busy meanwhile, and its requests wait for thumbnails being made.
    Skipped while a backlog exists, so that many page views cannot queue unbounded work.

    :param folder: the task instance's folder.
    :param names: image file names in it (already checked against its listing).
    """
    global _queued
    with _queued_lock:
        if _queued > MAX_QUEUED:
            return
        _queued += len(names)
    for name in names:
        _preparer().submit(_prepare_one, folder / name)


def _prepare_one(path: ObjectStoragePath) -> None:
    global _queued
    try:
        thumbnail_of(path)
    except Exception:  # noqa: S110 - the page's own request for it reports any problem
        pass
    finally:
        with _queued_lock:
            _queued -= 1


def _make_from(path: ObjectStoragePath) -> Thumbnail:
    """Read an image (only if its first bytes are PNG, JPEG, WebP or GIF) and make its thumbnail."""
    from airflow_provider_azerion.image_formats import sniff_image_format

    with path.fs.open(path.path, "rb") as handle:
        head: Any = handle.read(16)
        if sniff_image_format(head) is None:
            raise ThumbnailError(404, f"{path.name} is not a PNG, JPEG, WebP or GIF image.")
        rest = handle.read(MAX_SOURCE_BYTES + 1 - len(head))
    return make_thumbnail(head + rest)
