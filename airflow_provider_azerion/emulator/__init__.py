"""A local emulator of the Azerion Intelligence image API, for tests, demos and benchmarks.

Start one with :class:`EmulatorServer` (or the ``azerion-emulator`` command, or the
``azerion_emulator`` pytest fixture) and point a client at its ``base_url``. Results of
``response_format="url"`` come from a second origin (``files_url``) through signed links that
expire, as the real API's object-storage links do. The emulator keeps its own copy of the API's
documented rules (:mod:`~airflow_provider_azerion.emulator.rules`), so it can catch a client whose
limits are wrong; ``docs/API.md`` says which rules are documented and which are inferred.

Nothing here is imported by the provider's hooks or operators, and importing this package loads
neither the web server nor Pillow: they are imported when a server starts.
"""

from __future__ import annotations

from airflow_provider_azerion.emulator.faults import FaultPlan
from airflow_provider_azerion.emulator.server import EmulatorServer
from airflow_provider_azerion.emulator.state import RequestRecord

__all__ = ["EmulatorServer", "FaultPlan", "RequestRecord"]
