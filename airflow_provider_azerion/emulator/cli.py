"""``azerion-emulator``: run the emulator from a shell until interrupted.

Example::

    azerion-emulator --port 8095 --latency 0.2 --fault-rate 0.1 --fault-kinds 503,429

Point a client at the printed base URL with the printed key (a test key, never a real one).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_azerion.emulator.faults import ENDPOINTS
from airflow_provider_azerion.emulator.rules import URL_EXPIRY_SECONDS
from airflow_provider_azerion.emulator.server import EmulatorServer

API_KEY_ENV_VAR = "AZERION_EMULATOR_API_KEY"


def _kinds(value: str) -> list[str]:
    return [kind.strip() for kind in value.split(",") if kind.strip()]


def build_parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="azerion-emulator",
        description="Run a local emulator of the Azerion Intelligence image API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=8095,
        help="port to bind, 0 for a free one (default: %(default)s; Airflow's API server takes 8080)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV_VAR, "emulator-key"),
        help=f"bearer token to accept (default: ${API_KEY_ENV_VAR} or 'emulator-key')",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each generation takes")
    parser.add_argument("--max-concurrency", type=int, default=None, help="generations in flight before 429s")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds advertised on 429s")
    parser.add_argument("--max-side", type=int, default=None, help="longest side of rendered images")
    parser.add_argument("--noise", action="store_true", help="render incompressible noise images")
    parser.add_argument("--seed", type=int, default=0, help="seed of requests that give none")
    parser.add_argument(
        "--files-port", type=int, default=0, help="port of the result-file origin (default: a free one)"
    )
    parser.add_argument(
        "--url-expiry",
        type=int,
        default=URL_EXPIRY_SECONDS,
        help="seconds result links stay valid (default: %(default)s)",
    )
    parser.add_argument(
        "--forbidden-models",
        type=_kinds,
        default=[],
        help="comma-separated model ids the key may not use (answered 403)",
    )
    parser.add_argument(
        "--revise-prompts", action="store_true", help="send a revised_prompt with every image"
    )
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability that a request fails")
    parser.add_argument(
        "--fault-kinds", type=_kinds, default=["500"], help="comma-separated kinds for --fault-rate"
    )
    parser.add_argument(
        "--fault-script", type=_kinds, default=[], help="comma-separated kinds for the first requests"
    )
    parser.add_argument(
        "--fault-endpoint", choices=ENDPOINTS, default="generations", help="endpoint the faults apply to"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM.

    :param argv: Command-line arguments, without the program name; ``sys.argv[1:]`` by default.
    :return: The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    server = EmulatorServer(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        latency=args.latency,
        max_concurrency=args.max_concurrency,
        retry_after=args.retry_after,
        max_side=args.max_side,
        noise=args.noise,
        seed=args.seed,
        files_port=args.files_port,
        url_expiry=args.url_expiry,
        forbidden_models=args.forbidden_models,
        revise_prompts=args.revise_prompts,
    )
    try:
        server.faults.script(args.fault_script, endpoint=args.fault_endpoint)
        server.faults.set_rate(
            args.fault_rate, args.fault_kinds, seed=args.seed, endpoint=args.fault_endpoint
        )
    except ValueError as error:
        parser.error(str(error))

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    try:
        server.start()
    except (OSError, RuntimeError) as error:
        ports = f"port {args.port}, files port {args.files_port or 'any'}"
        print(f"azerion-emulator: cannot listen on {args.host} ({ports}): {error}", file=sys.stderr)
        return 1
    print(f"Azerion emulator listening on {server.base_url} (API key: {args.api_key})", flush=True)
    print(f"Result files served on {server.files_url}", flush=True)
    try:
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
