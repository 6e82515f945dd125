"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Connection form fields are declared as data (``conn-fields``, built from
:data:`~airflow_provider_azerion.settings.CONNECTION_SETTINGS`, and ``ui-field-behaviour``), which
Airflow 3.2+ reads without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_azerion import __version__
from airflow_provider_azerion.constants import DEFAULT_BASE_URL
from airflow_provider_azerion.settings import CONNECTION_SETTINGS


def get_provider_info() -> dict[str, Any]:
    """Describe the provider, its modules and the ``azerion`` connection type to Airflow."""
    return {
        "package-name": "airflow-provider-azerion",
        "name": "Azerion Intelligence",
        "description": "Generate images with the Azerion Intelligence API from Airflow tasks.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Azerion Intelligence",
                "external-doc-url": "https://docs.azerion.ai/",
                "tags": ["ai", "generative-ai", "image-generation"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Azerion Intelligence",
                "python-modules": ["airflow_provider_azerion.hooks.azerion"],
            }
        ],
        "operators": [
            {
                "integration-name": "Azerion Intelligence",
                "python-modules": [
                    "airflow_provider_azerion.operators.image_generation",
                    "airflow_provider_azerion.operators.review",
                ],
            }
        ],
        # @task.azerion_images; Airflow imports the factory only when a DAG file uses it.
        "task-decorators": [
            {
                "class-name": "airflow_provider_azerion.decorators.azerion_images.azerion_images_task",
                "name": "azerion_images",
            }
        ],
        # Read only with [core] lazy_discover_providers = False; the "airflow.plugins" entry point
        # in pyproject.toml is what loads the plugin under the default lazy discovery.
        "plugins": [
            {
                "name": "azerion_images",
                "plugin-class": "airflow_provider_azerion.plugins.images.AzerionImagesPlugin",
            }
        ],
        "config": {
            "azerion": {
                "description": "Settings of the Azerion Intelligence provider's Images tab (API server).",
                "options": {
                    "thumbnail_cache_dir": {
                        "description": (
                            "Folder where the Images tab keeps the thumbnails it made, shared by the "
                            "API server's workers. Empty: azerion-thumbnails-<uid> in the system's "
                            "temporary folder."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/var/cache/airflow/azerion-thumbnails",
                        "default": "",
                    }
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "azerion",
                "hook-class-name": "airflow_provider_azerion.hooks.azerion.AzerionHook",
                "hook-name": "Azerion Intelligence",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"password": "API key", "host": "Base URL"},
                    "placeholders": {
                        "host": DEFAULT_BASE_URL,
                        "password": "API key from the Azerion console",
                    },
                },
                "conn-fields": {setting.name: setting.conn_field() for setting in CONNECTION_SETTINGS},
            }
        ],
    }
