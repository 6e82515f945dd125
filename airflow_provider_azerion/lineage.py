"""OpenLineage for the operator: the output root as one dataset that grows, not one per image.

A catalogue should show "this DAG writes images to ``s3://bucket/images``", one node that every
run of the task writes to, rather than thousands of file nodes. The dataset is the operator's
``output_path`` (resolved), named by OpenLineage's conventions for the store, as the Amazon and
common-io providers name the same locations:

==============================  =====================  ==========================
``output_path``                 namespace              name
==============================  =====================  ==========================
``s3://bucket/images/``         ``s3://bucket``        ``images``
``s3://bucket``                 ``s3://bucket``        ``/``
``gs://bucket/images/``         ``gs://bucket``        ``images``
``file:///data/images/``        ``file``               ``/data/images``
``abfs://container/images``     ``abfs://container``   ``images``
==============================  =====================  ==========================

A templated ``output_path`` such as ``s3://bucket/{{ ds }}/`` makes one dataset per date; keep the
date out of ``output_path`` (the task's folder already holds the run id) for one stable dataset.

OpenLineage is optional (``pip install "airflow-provider-azerion[openlineage]"``): nothing here
imports it at module level, and :func:`output_lineage` returns ``None`` without it.
"""

from __future__ import annotations

from typing import Any

#: Protocols whose dataset namespace has another spelling in OpenLineage's naming spec.
_NAMESPACE_SCHEMES = {"s3a": "s3", "s3n": "s3", "gcs": "gs"}
#: Protocols of the local file system: namespace ``file``, name the absolute path.
_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def dataset_name(uri: str) -> tuple[str, str]:
    """The OpenLineage ``(namespace, name)`` of a storage location.

    :param uri: a plain URI without connection id, e.g. ``s3://bucket/key`` or ``file:///path``.
    :return: for object stores ``("{scheme}://{bucket}", key)`` (``"/"`` for the bucket itself),
        for local paths ``("file", "/absolute/path")``; trailing slashes are dropped so that
        ``s3://b/images`` and ``s3://b/images/`` are the same dataset.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    scheme = parts.scheme or "file"
    if scheme in _LOCAL_PROTOCOLS:
        return "file", "/" + parts.path.strip("/")
    scheme = _NAMESPACE_SCHEMES.get(scheme, scheme)
    return f"{scheme}://{parts.netloc}", parts.path.strip("/") or "/"


def output_lineage(
    output_path: Any,
    output_conn_id: str | None = None,
    *,
    images_written: int | None = None,
    bytes_written: int | None = None,
) -> Any:
    """The ``OperatorLineage`` of one image-generation task: its output root as the only output.

    :param output_path: the operator's (rendered) ``output_path``.
    :param output_conn_id: the operator's ``output_conn_id`` (not part of the name).
    :param images_written: images this try stored, reported as the output statistics' row count.
    :param bytes_written: their bytes.
    :return: an ``OperatorLineage``, or ``None`` when the OpenLineage provider is not installed.
    """
    try:
        from airflow.providers.common.compat.openlineage.facet import (
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None

    from airflow_provider_azerion.storage import resolve_output_root, storage_uri

    namespace, name = dataset_name(storage_uri(resolve_output_root(output_path, output_conn_id)))
    output_facets: dict[str, Any] = {}
    if images_written is not None:
        output_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
            rowCount=images_written,
            size=bytes_written,
            # Each image has its sidecar; the manifest is rewritten once.
            fileCount=2 * images_written + 1 if images_written else 0,
        )
    return OperatorLineage(
        outputs=[OutputDataset(namespace=namespace, name=name, outputFacets=output_facets)]
    )
