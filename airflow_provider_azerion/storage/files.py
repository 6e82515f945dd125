"""Files in a folder of any store: one listing, bounded concurrent reads, atomic writes, removal.

Two guarantees matter to callers:

- **No partial file at a final name.** Object stores (S3, GCS, Azure Blob) publish an object only
  when its upload completes, so a direct write is already atomic. Anywhere else (local disks,
  SFTP, network file systems) the bytes go to a hidden temporary name in the same folder first and
  are then renamed onto the final name, which replaces it in one step.
- **One listing per folder.** :func:`list_files` reads a folder once; callers decide from that
  snapshot what is complete instead of probing file by file, and :func:`read_files` fetches the
  few files they must read concurrently (bounded), at the store's pace rather than one by one.

:func:`probe_writable` proves a folder writable before anything is paid for.
"""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion.exceptions import AzerionStorageError
from airflow_provider_azerion.layout import temp_name
from airflow_provider_azerion.storage.paths import ATOMIC_PUT_PROTOCOLS, LOCAL_PROTOCOLS, storage_uri

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Reads in flight at once in :func:`read_files`: enough to hide an object store's latency
#: (20-50 ms a request), few enough not to trip its request-rate limits or exhaust sockets.
READ_CONCURRENCY = 16
#: OS errors about a folder that no retry heals: a file in the way, no permission, read-only.
_UNHEALABLE_ERRNOS = frozenset({errno.ENOTDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS})
#: The same, as HTTP statuses of an object store's SDK error: unauthorised, forbidden, not found.
_UNHEALABLE_HTTP_STATUSES = frozenset({401, 403, 404})


def list_files(folder: ObjectStoragePath) -> dict[str, int]:
    """List the files directly inside ``folder`` in one call.

    :return: file name to size in bytes; empty when the folder does not exist.
    :raises AzerionStorageError: when ``folder`` is a file, or the worker may not read it.
    """
    try:
        entries = folder.fs.ls(folder.path, detail=True)
    except FileNotFoundError:
        return {}
    except (NotADirectoryError, PermissionError) as err:
        raise _unusable(folder, err, "list") from err
    files: dict[str, int] = {}
    for entry in entries:
        if entry.get("type") != "file":
            continue
        name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
        files[name] = int(entry.get("size") or 0)
    return files


def read_files(
    folder: ObjectStoragePath, names: list[str], concurrency: int = READ_CONCURRENCY
) -> dict[str, bytes]:
    """Read files directly inside ``folder``, up to ``concurrency`` at a time.

    A missing file is left out of the result (another writer may have removed it since the
    listing). Any other error is raised: a caller deciding what to pay for again must not take a
    file it could not read for a file that is not there.

    :param folder: the folder holding them.
    :param names: bare file names inside ``folder``.
    :param concurrency: reads in flight at once (threads); 1 reads one after the other.
    :return: file name to contents, for the files that exist.
    :raises OSError: naming the file that could not be read and what to check.
    """
    fs, base = folder.fs, folder.path.rstrip("/")

    def read(name: str) -> tuple[str, bytes | None]:
        try:
            return name, fs.cat_file(f"{base}/{name}")
        except FileNotFoundError:
            return name, None
        except Exception as err:
            raise OSError(
                f"could not read {name} in {storage_uri(folder)}: {type(err).__name__}: {err}. "
                "Check the output store and its connection (output_conn_id), then retry"
            ) from err

    if concurrency <= 1 or len(names) <= 1:
        pairs = [read(name) for name in names]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(
            max_workers=min(concurrency, len(names)), thread_name_prefix="azerion-read"
        ) as pool:
            pairs = list(pool.map(read, names))
    return {name: data for name, data in pairs if data is not None}


def write_atomic(path: ObjectStoragePath, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the final name never holds a partial file.

    Object stores get a direct write (an object appears only when its upload completes). Other
    stores get a hidden temporary name (:func:`.layout.temp_name`) in the same folder, renamed
    onto ``path`` afterwards; on any error the temporary file is removed and the error re-raised. An existing
    file at ``path`` is replaced.

    :param path: the final location; its parent folder is created if needed.
    :param data: the complete contents.
    """
    if path.protocol in ATOMIC_PUT_PROTOCOLS:
        # The object stores' pipe_file puts the whole payload in one request (or a multipart
        # upload completed at the end). A file object would not do: its close() on the way out
        # of a failed write would still publish whatever had been buffered.
        path.fs.pipe_file(path.path, data)
        return
    fs = path.fs
    folder = path.parent
    fs.makedirs(folder.path, exist_ok=True)
    temp = folder / temp_name(path.name)
    try:
        if path.protocol in LOCAL_PROTOCOLS:
            _write_local(temp.path, path.path, data)
        else:
            with fs.open(temp.path, "wb") as out:
                out.write(data)
            _replace_remote(fs, temp.path, path.path)
    except BaseException:
        with suppress(Exception):
            fs.rm_file(temp.path)
        raise


def _write_local(temp: str, final: str, data: bytes) -> None:
    # Without fsync a crash soon after the rename can leave an empty file at the final name.
    _write_new(temp, data, flush=True)
    os.replace(temp, final)


def _replace_remote(fs: Any, temp: str, final: str) -> None:
    try:
        fs.mv(temp, final)
    except OSError:
        # SFTP's rename (and some others') refuses an existing target. Removing it first opens a
        # short window without the file, but never one with a partial file at the final name.
        if not fs.exists(final):
            raise
        fs.rm_file(final)
        fs.mv(temp, final)


def remove_files(folder: ObjectStoragePath, names: list[str]) -> None:
    """Delete files from ``folder``, ignoring ones that are already gone.

    :param folder: the folder holding them.
    :param names: bare file names inside ``folder``.
    """
    fs = folder.fs
    for name in names:
        with suppress(FileNotFoundError):
            fs.rm_file((folder / name).path)


#: Hint the kernel to write a file's pages now (Linux, BSDs); ``None`` where it is not available.
_WRITE_NOW_HINT = getattr(os, "POSIX_FADV_DONTNEED", None) if hasattr(os, "posix_fadvise") else None
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _write_new(path: str, data: bytes, flush: bool = False) -> None:
    """Write ``data`` to a new file at ``path``; ``fsync`` it if ``flush``, else start its writeback.

    The hint matters for the ``fsync`` that follows in :meth:`LocalCommitter._commit`: without
    it each file's blocks are allocated only when that file is flushed, so every ``fsync`` of a
    pass is a journal commit of its own (0.6 ms each on the ext4 of the VM the benchmarks ran on).
    With every file of the pass already on its way to the disk, the first ``fsync`` commits them
    all and the others find little left to do: 0.3 ms per image instead of 1.2 ms there. It does
    not change what is guaranteed, only when the kernel starts writing; pages still being written
    stay cached.
    """
    fd = os.open(path, _NEW_FILE_FLAGS, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if flush:
            os.fsync(fd)
        elif _WRITE_NOW_HINT is not None:
            with suppress(OSError):  # only a hint
                os.posix_fadvise(fd, 0, 0, _WRITE_NOW_HINT)
    finally:
        os.close(fd)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def probe_writable(folder: ObjectStoragePath) -> None:
    """Prove that files can be written into ``folder`` (creating it), before anything is paid for.

    Writes and removes one small hidden file (a temporary name: a crash leaves nothing a later
    try does not clean up). On an object store that also proves the bucket exists and the
    credentials may write to it.

    :raises AzerionStorageError: when the cause cannot heal by retrying: a file where a folder
        should be, a read-only file system, no permission, no such bucket.
    :raises OSError: for anything else (a store that is briefly unreachable): the task retries.
    """
    probe = folder / temp_name("azerion-probe")
    try:
        if folder.protocol in LOCAL_PROTOCOLS:
            os.makedirs(folder.path, exist_ok=True)
            _write_new(probe.path, b"")
            os.remove(probe.path)
            return
        fs = folder.fs
        if folder.protocol not in ATOMIC_PUT_PROTOCOLS:
            fs.makedirs(folder.path, exist_ok=True)
        fs.pipe_file(probe.path, b"")
        with suppress(FileNotFoundError):
            fs.rm_file(probe.path)
    except (FileNotFoundError, PermissionError, NotADirectoryError, FileExistsError) as err:
        raise _unusable(folder, err, "write into") from err
    except OSError as err:
        if err.errno in _UNHEALABLE_ERRNOS:
            raise _unusable(folder, err, "write into") from err
        raise
    except Exception as err:
        # Some stores' SDKs raise their own HTTP errors, not OSError (adlfs lets azure.core's
        # ResourceNotFoundError through for a missing container): refused or not found is final.
        if _http_status(err) in _UNHEALABLE_HTTP_STATUSES:
            raise _unusable(folder, err, "write into") from err
        raise


def _http_status(err: BaseException) -> object:
    return getattr(err, "status_code", None) or getattr(err, "code", None)


def _unusable(folder: ObjectStoragePath, err: BaseException, action: str) -> AzerionStorageError:
    errno_ = getattr(err, "errno", None)
    reason = os.strerror(errno_) if isinstance(errno_, int) else type(err).__name__
    return AzerionStorageError(
        f"cannot {action} {storage_uri(folder)} ({reason}); nothing was generated. Point output_path "
        "at a folder or bucket this worker may write (check the path, its permissions for the worker's "
        "user, the bucket's name and the credentials of output_conn_id), then clear the task"
    )
