"""Fixtures for the example DAG tests: the emulator behind ``azerion_default`` and an output base.

The example DAGs read their output folder from the Airflow Variable ``azerion_output_base``; the
tests set it through ``AIRFLOW_VAR_AZERION_OUTPUT_BASE``, which is how a deployment can set it too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

EXAMPLE_DAGS = REPO_ROOT / "example_dags"
#: Recognisable, so tests can prove it never reaches files, XCom or output.
SECRET_KEY = "sk-azerion-EXAMPLES-SECRET-5c0ffee"


def connection_json(base_url: str, api_key: str = SECRET_KEY) -> str:
    """``AIRFLOW_CONN_AZERION_DEFAULT`` for an emulator, with fast hook backoff for tests."""
    return json.dumps(
        {
            "conn_type": "azerion",
            "host": base_url,
            "password": api_key,
            "extra": {"backoff_factor": 0.01, "max_retry_wait": 0.05},
        }
    )


@pytest.fixture
def emulator(azerion_emulator, monkeypatch):
    """The emulator behind connection ``azerion_default``; no ``AZERION_API_KEY`` fallback."""
    azerion_emulator.api_key = SECRET_KEY
    monkeypatch.setenv("AIRFLOW_CONN_AZERION_DEFAULT", connection_json(azerion_emulator.base_url))
    monkeypatch.delenv("AZERION_API_KEY", raising=False)
    return azerion_emulator


@pytest.fixture
def output_base(tmp_path, monkeypatch) -> Path:
    """A local folder set as the ``azerion_output_base`` Variable the example DAGs template."""
    path = tmp_path / "images"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW_VAR_AZERION_OUTPUT_BASE", path.as_uri())
    return path
