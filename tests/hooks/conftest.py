"""Fixtures for hook tests: an `azerion_default` connection pointing at the emulator."""

from __future__ import annotations

import json

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
