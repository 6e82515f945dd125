"""Fixtures for the ``@task.azerion_images`` tests: the emulator, and a DAG bundle for ``dags/``.

``dag.test()`` runs only DAGs of a configured DAG bundle (see ``tests/conftest.py``). The
:func:`decorator_dags` fixture adds this folder's ``dags/`` as one more bundle for the test's
duration, through the same ``[dag_processor] dag_bundle_config_list`` setting, which Airflow reads
again each time it lists bundles.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import conftest as harness
from tests.conftest import put_emulator_behind_default_connection

DAGS = Path(__file__).resolve().parent / "dags"
DAG_FILE = DAGS / "azerion_decorator.py"
BUNDLE = "decorator-test-dags"
#: Recognisable, so tests can prove it never reaches files or XCom.
SECRET_KEY = "sk-azerion-DECORATOR-SECRET-7d1ce5"


@pytest.fixture
def decorator_dags(monkeypatch) -> Path:
    """``dags/`` as a DAG bundle that ``run_dag`` and ``dag.test()`` accept; returns the DAG file."""
    bundles = json.loads(os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    bundles.append(
        {
            "name": BUNDLE,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS), "refresh_interval": 0},
        }
    )
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    monkeypatch.setitem(harness.DAG_BUNDLES, BUNDLE, DAGS)
    return DAG_FILE


@pytest.fixture
def emulator(azerion_emulator, monkeypatch):
    """The emulator behind connection ``azerion_default``; no ``AZERION_API_KEY`` fallback."""
    return put_emulator_behind_default_connection(azerion_emulator, monkeypatch, SECRET_KEY)
