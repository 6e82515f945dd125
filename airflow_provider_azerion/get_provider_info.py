"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Connection form fields are declared here as data (``conn-fields``, ``ui-field-behaviour``), which
Airflow 3.2+ reads without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_azerion import __version__
from airflow_provider_azerion.constants import DEFAULT_BASE_URL


def _number_field(label: str, description: str, default: float | int, kind: str = "number") -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], "default": default},
    }


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
                "python-modules": ["airflow_provider_azerion.operators.image_generation"],
            }
        ],
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
                "conn-fields": {
                    "connect_timeout": _number_field(
                        "Connect timeout (s)", "Seconds to wait for a connection to the API.", 10
                    ),
                    "read_timeout": _number_field(
                        "Read timeout (s)", "Seconds to wait for a response; generations can be slow.", 300
                    ),
                    "max_attempts": _number_field(
                        "Max attempts",
                        "Requests sent at most per API call, first one included.",
                        5,
                        "integer",
                    ),
                    "backoff_factor": _number_field(
                        "Backoff factor (s)", "Base of the exponential backoff between attempts.", 1.0
                    ),
                    "max_retry_wait": _number_field(
                        "Max retry wait (s)",
                        "Cap on any single wait between attempts, Retry-After included.",
                        60,
                    ),
                    "retry_on_timeout": {
                        "label": "Resend generations after a lost response",
                        "description": (
                            "Retry a generation whose response was lost after sending (read timeout, "
                            "dropped connection). It may already have been generated and billed."
                        ),
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                    "max_download_bytes": _number_field(
                        "Max download size (bytes)",
                        "Refuse result images larger than this.",
                        134217728,
                        "integer",
                    ),
                    "pool_maxsize": _number_field(
                        "HTTP pool size",
                        "Connections kept open per host; at least the task's concurrency.",
                        32,
                        "integer",
                    ),
                },
            }
        ],
    }
