"""Fixtures for the example DAG tests: the emulator behind ``azerion_default`` and an output base.

The example DAGs read their output folder from the Airflow Variable ``azerion_output_base``; the
tests set it through ``AIRFLOW_VAR_AZERION_OUTPUT_BASE``, which is how a deployment can set it too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, emulator_connection_json, put_emulator_behind_default_connection

EXAMPLE_DAGS = REPO_ROOT / "example_dags"
#: Recognisable, so tests can prove it never reaches files, XCom or output.
SECRET_KEY = "sk-azerion-EXAMPLES-SECRET-5c0ffee"


def connection_json(base_url: str, api_key: str = SECRET_KEY) -> str:
    """``AIRFLOW_CONN_AZERION_DEFAULT`` for an emulator, with fast hook backoff for tests."""
    return emulator_connection_json(base_url, api_key)


@pytest.fixture
def emulator(azerion_emulator, monkeypatch):
    """The emulator behind connection ``azerion_default``; no ``AZERION_API_KEY`` fallback."""
    return put_emulator_behind_default_connection(azerion_emulator, monkeypatch, SECRET_KEY)


@pytest.fixture
def output_base(tmp_path, monkeypatch) -> Path:
    """A local folder set as the ``azerion_output_base`` Variable the example DAGs template."""
    path = tmp_path / "images"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW_VAR_AZERION_OUTPUT_BASE", path.as_uri())
    return path
