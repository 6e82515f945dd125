"""Fixtures of the reliability suite: one emulator per module behind ``azerion_default``.

Starting an emulator costs about 0.2 s, and the suite runs many short tests against it, so each
module shares one server and every test starts from a clean slate: request log, faults and knobs
reset, and the connection (with its hook settings in ``extra``) defined anew.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_azerion.emulator.server import EmulatorServer
from tests.reliability.helpers import wait_idle

# Recognisable, so the secrets tests can search every output for it.
SECRET_KEY = "sk-azerion-LEAKCHECK-5c0ffee91d2a"
#: Hook settings for fast tests: tiny backoff, three attempts per call.
FAST_RETRIES = {"backoff_factor": 0.01, "max_retry_wait": 0.1, "max_attempts": 3}
_KNOBS = {
    "api_key": SECRET_KEY,
    "latency": 0.0,
    "max_concurrency": None,
    "retry_after": 0.05,
    "max_side": None,
    "noise": False,
    "seed": 0,
}


@pytest.fixture(scope="package", autouse=True)
def _one_execution_api_per_process() -> Iterator[None]:
    """Build Airflow's in-process Execution API once, as Airflow 3.3 does, also on Airflow 3.2.

    Under ``dag.test()`` Airflow 3.2 builds a new in-process Execution API for every task try,
    and its first request then spends about 5 s building the versioned routes; Airflow 3.3 keeps
    one per process (``functools.lru_cache`` on ``in_process_api_server``). This suite runs some
    sixty tries, so on 3.2 it reuses one API the way 3.3 does. Nothing else is changed, and the
    original function is put back afterwards.
    """
    from airflow.sdk.execution_time import supervisor

    original = supervisor.in_process_api_server
    if hasattr(original, "cache_info"):  # Airflow 3.3+: already one per process
        yield
        return
    supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(original)
    try:
        yield
    finally:
        supervisor.in_process_api_server = original


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[EmulatorServer]:
    """The module's emulator on a free loopback port."""
    with EmulatorServer(host="127.0.0.1", port=0, **_KNOBS) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture
def connect(monkeypatch) -> Callable[..., None]:
    """Define connection ``azerion_default`` for the emulator: ``connect(base_url, **extra)``.

    ``extra`` holds hook settings (``read_timeout``, ``max_attempts``...) on top of
    :data:`FAST_RETRIES`.
    """

    def define(base_url: str, **extra: Any) -> None:
        connection = {
            "conn_type": "azerion",
            "host": base_url,
            "password": SECRET_KEY,
            "extra": {**FAST_RETRIES, **extra},
        }
        monkeypatch.setenv("AIRFLOW_CONN_AZERION_DEFAULT", json.dumps(connection))

    monkeypatch.delenv("AZERION_API_KEY", raising=False)
    return define


@pytest.fixture
def emulator(shared_emulator: EmulatorServer, connect) -> EmulatorServer:
    """The module's emulator, reset, behind ``azerion_default`` with fast hook retries."""
    wait_idle(shared_emulator)  # a late answer to the previous test must not land in this one's log
    for name, value in _KNOBS.items():
        setattr(shared_emulator, name, value)
    shared_emulator.reset()
    connect(shared_emulator.base_url)
    return shared_emulator
