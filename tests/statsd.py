"""A StatsD server for tests: a UDP socket on loopback that keeps every metric line it receives."""

from __future__ import annotations

import re
import socket
import threading
from collections import defaultdict

_LINE = re.compile(r"^(?P<name>[^:]+):(?P<value>[-0-9.e]+)\|(?P<kind>c|ms|g|h|s)(?:\|@[0-9.]+)?(?:\|#.*)?$")


class StatsdListener:
    """Receives StatsD datagrams on 127.0.0.1 until closed (a bounded wait per read).

    Use as a context manager; ``port`` is where Airflow's ``[metrics] statsd_port`` should point.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="statsd-listener", daemon=True)

    def start(self) -> None:
        """Start receiving in a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop receiving (within a read timeout) and release the port."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.sock.close()

    def __enter__(self) -> StatsdListener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:  # the timeout: look at the stop flag again
                continue
            with self._lock:
                self.lines += data.decode("utf-8", "replace").splitlines()

    def counters(self, prefix: str) -> dict[str, float]:
        """The sum of every counter whose name starts with ``prefix``, by name."""
        return self._totals(prefix, "c")

    def timings(self, prefix: str) -> dict[str, list[float]]:
        """Every timing value received for names starting with ``prefix``, by name."""
        found: dict[str, list[float]] = defaultdict(list)
        for name, value, kind in self._parsed():
            if kind == "ms" and name.startswith(prefix):
                found[name].append(value)
        return dict(found)

    def _totals(self, prefix: str, kind: str) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for name, value, line_kind in self._parsed():
            if line_kind == kind and name.startswith(prefix):
                totals[name] += value
        return dict(totals)

    def _parsed(self) -> list[tuple[str, float, str]]:
        with self._lock:
            lines = list(self.lines)
        parsed = []
        for line in lines:
            match = _LINE.match(line)
            if match:
                parsed.append((match["name"], float(match["value"]), match["kind"]))
        return parsed
