"""Storage for a task's outputs on any store ``ObjectStoragePath`` reaches: where, how, what is there.

- :mod:`.paths`: ``output_path`` resolved, plain URIs without connection ids.
- :mod:`.files`: one listing per folder, bounded concurrent reads, atomic writes, the writability probe.
- :mod:`.committer`: durable local writes off the task's thread (group commit).

Imported lazily (inside ``execute``), never by a DAG file's import.
"""

from __future__ import annotations

from airflow_provider_azerion.layout import TEMP_SUFFIX, child_uri, is_temp_name, sanitize_segment
from airflow_provider_azerion.storage.committer import CommitError, LocalCommitter
from airflow_provider_azerion.storage.files import (
    READ_CONCURRENCY,
    list_files,
    probe_writable,
    read_files,
    remove_files,
    write_atomic,
)
from airflow_provider_azerion.storage.paths import (
    ATOMIC_PUT_PROTOCOLS,
    LOCAL_PROTOCOLS,
    resolve_output_root,
    storage_uri,
)

__all__ = [
    "ATOMIC_PUT_PROTOCOLS",
    "LOCAL_PROTOCOLS",
    "READ_CONCURRENCY",
    "TEMP_SUFFIX",
    "CommitError",
    "LocalCommitter",
    "child_uri",
    "is_temp_name",
    "list_files",
    "probe_writable",
    "read_files",
    "remove_files",
    "resolve_output_root",
    "sanitize_segment",
    "storage_uri",
    "write_atomic",
]
