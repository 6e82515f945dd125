"""Fixtures for operator tests: the emulator behind ``azerion_default`` and an output folder."""

from __future__ import annotations

import json

import pytest

# Recognisable, so tests can prove it never reaches XCom, sidecars or logs.
SECRET_KEY = "sk-azerion-OPERATOR-SECRET-93be1f"


@pytest.fixture
def emulator(azerion_emulator, monkeypatch):
    """The emulator behind connection ``azerion_default``, with fast hook backoff."""
    azerion_emulator.api_key = SECRET_KEY
    connection = {
        "conn_type": "azerion",
        "host": azerion_emulator.base_url,
        "password": SECRET_KEY,
        "extra": {"backoff_factor": 0.01, "max_retry_wait": 0.05},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AZERION_DEFAULT", json.dumps(connection))
    monkeypatch.delenv("AZERION_API_KEY", raising=False)
    return azerion_emulator
