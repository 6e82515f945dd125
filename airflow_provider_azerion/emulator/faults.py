"""Scripted and random failures, so clients can be tested against every way the API can fail.

A fault is named by its kind:

- ``"ok"``: no fault (a placeholder in a script);
- ``"429"``, ``"500"``, ``"502"``, ``"503"``, ``"504"``: that status, in Azerion's JSON error shape
  on the API and in object storage's XML on result files (``429`` also carries ``Retry-After``, and
  on the API ``retry-after-ms``);
- ``"html502"``: a 502 with a proxy's HTML page;
- ``"drop"``: the TCP connection is closed without any HTTP response;
- ``"slow:<seconds>"``: answer normally after sleeping that long (to exceed a client read timeout);
- generations and models: ``"400"``, ``"401"``, ``"403"``, ``"404"``, ``"422"`` (that status in
  Azerion's JSON error shape), ``"truncated_json"`` (200, JSON cut in half), ``"empty_data"`` (200,
  ``"data": []``);
- generations only: ``"invalid_base64"`` (200, ``b64_json`` that is not base64), ``"not_image"``
  (200, base64 of bytes that are not an image);
- files only (the result-link origin): ``"403"`` (``AccessDenied``), ``"404"`` (``NoSuchKey``) and
  ``"expired"`` (403 ``AccessDenied`` as for an expired link), in XML; ``"truncated"``
  (``Content-Length`` promises the whole image, the connection closes after half of it),
  ``"not_image"`` (200 with bytes that are not an image).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

#: Endpoints faults can target: image generation, model listing, and result-file downloads.
ENDPOINTS = ("generations", "models", "files")

#: Fault kinds answered with an error of that status (JSON on the API, XML on result files).
STATUS_FAULTS = {
    kind: int(kind) for kind in ("400", "401", "403", "404", "422", "429", "500", "502", "503", "504")
}

_COMMON_KINDS = frozenset({"ok", "html502", "drop", "429", "500", "502", "503", "504"})
_CLIENT_ERRORS = frozenset({"400", "401", "403", "404", "422"})
_ENDPOINT_KINDS = {
    "generations": _CLIENT_ERRORS | {"truncated_json", "invalid_base64", "not_image", "empty_data"},
    "models": _CLIENT_ERRORS | {"truncated_json", "empty_data"},
    "files": frozenset({"403", "404", "expired", "truncated", "not_image"}),
}

#: Scope extension under which the server exposes the connection's transport, so a fault can close
#: the socket itself: an exception raised by the app would only make uvicorn answer with a 500.
TRANSPORT_EXTENSION = "azerion_emulator.transport"


def slow_seconds(kind: str) -> float | None:
    """Return the delay of a ``"slow:<seconds>"`` kind, or ``None`` for any other kind."""
    if not kind.startswith("slow:"):
        return None
    return float(kind.removeprefix("slow:"))


def validate_kind(kind: str, endpoint: str = "generations") -> str:
    """Return ``kind`` if ``endpoint`` supports it, else raise ``ValueError``.

    :param kind: A fault kind, see the module documentation.
    :param endpoint: One of :data:`ENDPOINTS`.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"Unknown fault endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
    if kind in _COMMON_KINDS or kind in _ENDPOINT_KINDS[endpoint]:
        return kind
    if kind.startswith("slow:"):
        try:
            delay = slow_seconds(kind)
        except ValueError:
            delay = None
        if delay is not None and delay >= 0:
            return kind
    supported = sorted(_COMMON_KINDS | _ENDPOINT_KINDS[endpoint] | {"slow:<seconds>"})
    raise ValueError(f"Unknown fault {kind!r} for {endpoint}; expected one of {', '.join(supported)}")


@dataclass
class _Rate:
    rate: float
    kinds: tuple[str, ...]
    rng: random.Random


class FaultPlan:
    """Which requests fail, and how: a script consumed in order, then a seeded random rate.

    Each endpoint has its own script and rate. A request first consumes the next scripted kind, if
    any; only when the script is exhausted does the rate apply. Safe to use from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[str]] = {endpoint: deque() for endpoint in ENDPOINTS}
        self._rates: dict[str, _Rate] = {}

    def script(self, kinds: Iterable[str], endpoint: str = "generations") -> None:
        """Queue faults for the next requests to ``endpoint``, one kind per request, in order.

        Kinds are appended after any still pending. ``"ok"`` lets one request through unharmed.

        :param kinds: Fault kinds, e.g. ``["503", "ok", "drop"]``.
        :param endpoint: ``"generations"``, ``"models"`` or ``"files"``.
        """
        checked = [validate_kind(kind, endpoint) for kind in kinds]
        with self._lock:
            self._scripts[endpoint].extend(checked)

    def set_rate(
        self,
        rate: float,
        kinds: Iterable[str] = ("500",),
        seed: int = 0,
        endpoint: str = "generations",
    ) -> None:
        """Fail each request to ``endpoint`` with probability ``rate``, once the script is exhausted.

        The draws come from a generator seeded with ``seed``, so the same sequence of requests meets
        the same faults on every run.

        :param rate: Probability of a fault, from 0 (never, which removes the rate) to 1 (always).
        :param kinds: Fault kinds to pick from, uniformly.
        :param seed: Seed of the random generator.
        :param endpoint: ``"generations"``, ``"models"`` or ``"files"``.
        """
        if not 0 <= rate <= 1:
            raise ValueError(f"Fault rate must be between 0 and 1, got {rate}")
        checked = tuple(validate_kind(kind, endpoint) for kind in kinds)
        if rate and not checked:
            raise ValueError("A fault rate needs at least one fault kind")
        with self._lock:
            if rate:
                self._rates[endpoint] = _Rate(rate, checked, random.Random(seed))
            else:
                self._rates.pop(endpoint, None)

    def next_fault(self, endpoint: str = "generations") -> str | None:
        """Decide the fault of one request to ``endpoint``: its kind, or ``None`` for none."""
        with self._lock:
            script = self._scripts[endpoint]
            if script:
                kind = script.popleft()
                return None if kind == "ok" else kind
            rate = self._rates.get(endpoint)
            if rate is None or rate.rng.random() >= rate.rate:
                return None
            kind = rate.rng.choice(rate.kinds)
            return None if kind == "ok" else kind

    def pending(self, endpoint: str = "generations") -> int:
        """Return how many scripted faults ``endpoint`` has not consumed yet."""
        with self._lock:
            return len(self._scripts[endpoint])

    def clear(self) -> None:
        """Remove every script and rate."""
        with self._lock:
            for script in self._scripts.values():
                script.clear()
            self._rates.clear()
