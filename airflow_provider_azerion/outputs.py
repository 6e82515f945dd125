"""What downstream code imports to read a task's images: the public names, kept in one place.

``read_manifest`` and ``images_of`` (:mod:`.manifest`) read the images of an
``ImageGenerationOperator`` back in a downstream task; the rest are re-exported for code written
against earlier releases. The work itself lives in :mod:`.folder`, :mod:`.resume`,
:mod:`.sidecar`, :mod:`.manifest` and :mod:`.xcom`.
"""

from __future__ import annotations

from airflow_provider_azerion.layout import MANIFEST_NAME, image_name, sidecar_name
from airflow_provider_azerion.manifest import images_of, read_manifest
from airflow_provider_azerion.sidecar import XCOM_FIELDS, StoredImage
from airflow_provider_azerion.xcom import ASSET_EXTRA_LIMIT, CHUNK_IMAGES, XCOM_LIMIT

__all__ = [
    "ASSET_EXTRA_LIMIT",
    "CHUNK_IMAGES",
    "MANIFEST_NAME",
    "XCOM_FIELDS",
    "XCOM_LIMIT",
    "StoredImage",
    "image_name",
    "images_of",
    "read_manifest",
    "sidecar_name",
]
