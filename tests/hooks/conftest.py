"""Fixtures for hook tests: an `azerion_default` connection pointing at the emulator."""

from __future__ import annotations

import json
import logging

import pytest

# Recognisable, so tests can prove it never leaks into logs or error texts.
SECRET_KEY = "sk-azerion-SECRET-4f1c2e9a7b"


@pytest.fixture
def emulator(azerion_emulator, monkeypatch):
    """The emulator, with the recognisable key, behind connection ``azerion_default``."""
    azerion_emulator.api_key = SECRET_KEY
    azerion_emulator.max_side = 64  # small images: seedream only takes 512x512 and up
    monkeypatch.setenv(
        "AIRFLOW_CONN_AZERION_DEFAULT",
        json.dumps({"conn_type": "azerion", "host": azerion_emulator.base_url, "password": SECRET_KEY}),
    )
    monkeypatch.delenv("AZERION_API_KEY", raising=False)
    return azerion_emulator


@pytest.fixture
def make_hook(emulator):
    """Build hooks on ``azerion_default`` with fast backoff; close them after the test."""
    from airflow_provider_azerion.hooks.azerion import AzerionHook

    hooks = []

    def factory(**overrides):
        overrides.setdefault("backoff_factor", 0.01)
        hook = AzerionHook(**overrides)
        hooks.append(hook)
        return hook

    yield factory
    for hook in hooks:
        hook.close()


@pytest.fixture
def log_output(caplog):
    """Everything logged during the test: stdlib records and Airflow's structlog events.

    Airflow 3 task loggers are structlog loggers; capture_logs() sees their events whatever
    stream the process has configured, which fd capture does not reliably do.
    """
    import structlog

    with caplog.at_level(logging.DEBUG), structlog.testing.capture_logs() as events:
        yield lambda: "\n".join([caplog.text, *(f"{e.get('log_level')} {e.get('event')}" for e in events)])
