"""Object-storage helpers: where outputs go, how they are written, and what is already there.

Everything goes through Airflow's :class:`~airflow.sdk.ObjectStoragePath`, so ``file://``,
``s3://``, ``gs://`` and the rest behave alike. Two guarantees matter to callers:

- **No partial file at a final name.** Object stores (S3, GCS, Azure Blob) publish an object only
  when its upload completes, so a direct write is already atomic. Anywhere else (local disks,
  SFTP, network file systems) the bytes go to a hidden temporary name in the same folder first and
  are then renamed onto the final name, which replaces it in one step.
- **One listing per folder.** :func:`list_files` reads a folder once; callers decide from that
  snapshot what is complete instead of probing file by file.

This module is imported lazily (inside ``execute``), never by a DAG file's import.
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_azerion.exceptions import AzerionValidationError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Protocols whose single-object writes become visible only once complete.
ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})
#: Protocols served by the local file system, where ``os.replace`` gives an atomic rename.
LOCAL_PROTOCOLS = frozenset({"file", "local"})
#: Suffix of the hidden temporary files written before a rename.
TEMP_SUFFIX = ".partial"

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._=-]")


def sanitize_segment(value: object) -> str:
    """Make one path segment safe on every store from a templated value such as a run id.

    Anything outside ``[A-Za-z0-9._=-]`` becomes ``_`` (run ids carry ``:`` and ``+``), ``..``
    never survives, a leading dot is replaced so the result is never a hidden name (hidden names
    are reserved for temporary files), and an empty value becomes ``_``.

    :param value: the raw segment; converted with ``str()``.
    :return: a non-empty segment without ``/``.
    """
    text = _UNSAFE_CHARS.sub("_", str(value)).replace("..", "__")
    if text.startswith("."):
        text = "_" + text[1:]
    return text or "_"


def resolve_output_root(output_path: Any, conn_id: str | None = None) -> ObjectStoragePath:
    """Turn an ``output_path`` argument into an absolute :class:`ObjectStoragePath`.

    :param output_path: a URL such as ``file:///data/images/``, ``s3://bucket/prefix/``, an
        absolute local path, or an :class:`ObjectStoragePath`.
    :param conn_id: Airflow connection for the store; overrides one embedded in the path.
    :raises AzerionValidationError: when the path is missing, relative, or uses a protocol no
        installed Airflow provider can write to.
    """
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io.fs import has_fs

    if isinstance(output_path, ObjectStoragePath):
        raw = str(output_path)
    elif isinstance(output_path, str) and output_path.strip():
        raw = output_path.strip()
    else:
        raise AzerionValidationError(
            "output_path must be a non-empty URL or ObjectStoragePath, e.g. 'file:///data/images/' "
            f"or 's3://bucket/images/'; got {output_path!r}"
        )
    parts = urlsplit(raw)
    if parts.scheme in LOCAL_PROTOCOLS and parts.netloc not in ("", "localhost"):
        # "file://data/x" names host "data"; fsspec would quietly treat it as cwd-relative.
        raise AzerionValidationError(
            f"output_path {raw!r} is not an absolute file URL; write it with three slashes, "
            "e.g. 'file:///data/images/'"
        )
    if isinstance(output_path, ObjectStoragePath):
        root = ObjectStoragePath(output_path, conn_id=conn_id) if conn_id else output_path
    else:
        try:
            root = ObjectStoragePath(raw, conn_id=conn_id)
        except ValueError as err:  # universal_pathlib: "Unsupported filesystem: 'foo'"
            raise AzerionValidationError(f"output_path {raw!r} uses an unsupported protocol: {err}") from None
    if not root.protocol:
        if not root.is_absolute():
            raise AzerionValidationError(
                f"output_path {raw!r} is relative; use an absolute path or a URL such as "
                "'file:///data/images/' so every worker writes to the same place"
            )
        root = ObjectStoragePath(f"file://{root.path}", conn_id=root.conn_id)
    if not has_fs(root.protocol):
        raise AzerionValidationError(
            f"output_path {raw!r}: no Airflow filesystem is registered for protocol {root.protocol!r}. "
            "Install the provider that supplies it (e.g. apache-airflow-providers-amazon[s3fs] for "
            "s3://, apache-airflow-providers-google for gs://)."
        )
    return root


def storage_uri(path: ObjectStoragePath) -> str:
    """The plain URI of ``path`` (``s3://bucket/key``, ``file:///dir/name``), without its conn id.

    ``str(ObjectStoragePath)`` embeds the connection id (``s3://aws_conn@bucket/key``); URIs
    published to XCom and asset events name the object, not the credentials used to reach it.
    """
    return f"{path.protocol or 'file'}://{path.path}"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file left by :func:`write_atomic`."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def list_files(folder: ObjectStoragePath) -> dict[str, int]:
    """List the files directly inside ``folder`` in one call.

    :return: file name to size in bytes; empty when the folder does not exist.
    """
    try:
        entries = folder.fs.ls(folder.path, detail=True)
    except FileNotFoundError:
        return {}
    files: dict[str, int] = {}
    for entry in entries:
        if entry.get("type") != "file":
            continue
        name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
        files[name] = int(entry.get("size") or 0)
    return files


def write_atomic(path: ObjectStoragePath, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the final name never holds a partial file.

    Object stores get a direct write (an object appears only when its upload completes). Other
    stores get a hidden ``.{name}.{uuid}.partial`` in the same folder, renamed onto ``path``
    afterwards; on any error the temporary file is removed and the error re-raised. An existing
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
    temp = folder / f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
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
    with open(temp, "wb") as out:
        out.write(data)
        out.flush()
        # Without fsync a crash soon after the rename can leave an empty file at the final name.
        os.fsync(out.fileno())
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
