"""Where a task's outputs go: ``output_path`` resolved to an ``ObjectStoragePath``, and plain URIs.

Everything goes through Airflow's :class:`~airflow.sdk.ObjectStoragePath`, so ``file://``,
``s3://``, ``gs://`` and the rest behave alike. URIs published to XCom, asset events and logs
never carry the connection id used to reach them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_azerion.exceptions import AzerionValidationError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Protocols whose single-object writes become visible only once complete.
ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})
#: Protocols served by the local file system, where ``os.replace`` gives an atomic rename.
LOCAL_PROTOCOLS = frozenset({"file", "local"})


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
        # Its plain URI: str() would embed the connection id ("file://my_fs@/data").
        raw = storage_uri(output_path) if output_path.protocol else str(output_path)
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
