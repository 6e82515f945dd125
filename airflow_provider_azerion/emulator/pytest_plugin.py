"""Pytest fixtures that run the Azerion emulator, registered through the ``pytest11`` entry point.

Installing the provider makes ``azerion_emulator`` (one server per test) and
``azerion_emulator_session`` (one server per session) available to any test suite. Server options
for the function-scoped fixture can be given with a marker::

    @pytest.mark.azerion_emulator(latency=0.1, max_side=64)
    def test_generation(azerion_emulator): ...

Every pytest run in an environment with the provider installed loads this module, so it imports
nothing heavy: the web server is imported only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_azerion.emulator.server import EmulatorServer

MARKER = "azerion_emulator"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker so ``--strict-markers`` suites accept it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): EmulatorServer options for the azerion_emulator fixture.",
    )


@pytest.fixture
def azerion_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """Start an Azerion emulator on a free loopback port for one test and stop it afterwards.

    Keyword arguments of a ``@pytest.mark.azerion_emulator(...)`` marker are passed to
    :class:`~airflow_provider_azerion.emulator.server.EmulatorServer`.
    """
    from airflow_provider_azerion.emulator.server import EmulatorServer

    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker else {}
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    with EmulatorServer(**options) as server:
        yield server


@pytest.fixture(scope="session")
def azerion_emulator_session() -> Iterator[EmulatorServer]:
    """One Azerion emulator shared by the whole session, for suites where start-up time matters.

    Tests share its request log, counters, knobs and faults: call ``server.reset()`` (and restore
    any knob you change) at the start of a test that depends on them.
    """
    from airflow_provider_azerion.emulator.server import EmulatorServer

    with EmulatorServer(host="127.0.0.1", port=0) as server:
        yield server
