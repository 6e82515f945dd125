"""The Azerion emulator of ``make cluster``, with a control port the tests and benchmarks read and tune.

``azerion-emulator`` keeps its counters in its own process; a cluster's tests run in another. This
runs the same :class:`EmulatorServer` and, on a second loopback port, a small JSON API:

- ``GET /stats``: generation requests received, in flight and at peak, and one entry per
  generation request (status, prompt, injected fault, start and end times);
- ``POST /configure``: ``{"latency": 2, "max_concurrency": null, "retry_after": 0.01,
  "fault_rate": 0.1, "fault_kinds": [...], "seed": 1, "reset": true}``; every key optional.
  ``reset`` clears the request log and counters first.

The API key comes from ``AZERION_EMULATOR_API_KEY`` and is never printed: a cluster's tests prove
it reaches no log.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from airflow_provider_azerion.emulator.server import EmulatorServer

KNOBS = ("latency", "max_concurrency", "retry_after", "max_side")


def stats(server: EmulatorServer) -> dict:
    """What the emulator has served since its last reset."""
    generations = [
        {
            "status": r.status,
            "prompt": r.prompt,
            "fault": r.fault,
            "started": r.started,
            "finished": r.finished,
        }
        for r in server.requests_to("/images/generations")
    ]
    return {
        "generation_count": server.generation_count,
        "in_flight": server.in_flight,
        "peak_concurrency": server.peak_concurrency,
        "generations": generations,
    }


def configure(server: EmulatorServer, settings: dict) -> None:
    """Apply ``settings`` (see the module docstring) to the running server."""
    if settings.get("reset"):
        server.reset()
    for knob in KNOBS:
        if knob in settings:
            setattr(server, knob, settings[knob])
    if "fault_rate" in settings:
        kinds = settings.get("fault_kinds") or ["500"]
        server.faults.set_rate(float(settings["fault_rate"]), kinds, seed=int(settings.get("seed", 0)))


def control_handler(server: EmulatorServer) -> type[BaseHTTPRequestHandler]:
    """The request handler of the control port."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/stats":
                self._answer(404, {"error": "GET /stats or POST /configure"})
                return
            self._answer(200, stats(server))

        def do_POST(self) -> None:
            if self.path != "/configure":
                self._answer(404, {"error": "GET /stats or POST /configure"})
                return
            try:
                settings = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                configure(server, settings)
            except (ValueError, TypeError) as error:
                self._answer(400, {"error": f"bad settings: {error}"})
                return
            self._answer(200, stats(server) | {"generations": []})

        def log_message(self, format: str, *args: object) -> None:  # polled often: keep the log quiet
            pass

    return Handler


def main() -> int:
    """Serve the emulator and its control port until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True, help="the API's port on 127.0.0.1")
    parser.add_argument("--control-port", type=int, required=True, help="the control port on 127.0.0.1")
    parser.add_argument("--max-side", type=int, default=64, help="longest side of rendered images")
    args = parser.parse_args()
    api_key = os.environ.get("AZERION_EMULATOR_API_KEY")
    if not api_key:
        parser.error("set AZERION_EMULATOR_API_KEY to the key the emulator should accept")
    server = EmulatorServer(api_key=api_key, port=args.port, max_side=args.max_side).start()
    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), control_handler(server))
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print(
        f"Azerion emulator on {server.base_url}, control on http://127.0.0.1:{args.control_port}", flush=True
    )
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        control.shutdown()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
