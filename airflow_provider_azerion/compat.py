"""Small helpers about the installed Airflow, for messages that tell users which version they need."""

from __future__ import annotations


def airflow_version() -> str:
    """The installed apache-airflow version, read from package metadata (no Airflow import)."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("apache-airflow", "apache-airflow-core"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"
