"""``python -m benchmarks [NAME ...] [--quick] [--output PATH] [--strict]``.

Runs the named benchmarks (all of them by default), prints each figure with PASS or MISS against
its target, and merges the results into ``.bench/results.json`` (one entry per benchmark, each
with the machine and date it was measured on).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import BENCHMARKS


def _isolate_airflow() -> None:
    """Point Airflow at a scratch home before it is first imported (nothing here needs a DB)."""
    home = tempfile.mkdtemp(prefix="azerion-bench-airflow-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def _send_task_logs_to(path: Path) -> None:
    """Log as a task does, as JSON lines to a file, so log calls cost what they cost in a task."""
    from airflow.sdk.log import configure_logging

    path.parent.mkdir(parents=True, exist_ok=True)
    configure_logging(json_output=True, output=path.open("wb"))  # open for the whole run


def main(argv: Sequence[str] | None = None) -> int:
    """Run benchmarks and report them; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that it runs, not speed")
    parser.add_argument("--output", type=Path, default=Path(".bench/results.json"), help="results file")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if a target is missed")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    if unknown := [name for name in names if name not in BENCHMARKS]:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    _isolate_airflow()
    _send_task_logs_to(args.output.parent / "benchmarks.log")
    from benchmarks.harness import machine

    where = machine()
    command = shlex.join([Path(sys.executable).name, "-m", "benchmarks", *(argv or sys.argv[1:])])
    print(
        f"{command} on {where['nproc']} x {where['cpu_model']}, Python {where['python']}, "
        f"Airflow {where['airflow']}"
    )
    results: dict[str, Any] = {}
    for name in names:
        module = importlib.import_module(BENCHMARKS[name].module)
        result = module.run(**(module.QUICK if args.quick else {}))
        print(result.summary(), flush=True)
        for figure, value in result.figures.items():
            print(f"    {figure}: {value}")
        results[name] = {**result.to_dict(), "quick": args.quick, "command": command, "machine": where}

    _merge(args.output, results)
    print(f"Results written to {args.output}")
    missed = [name for name, entry in results.items() if not entry["passed"]]
    return 1 if args.strict and missed else 0


def _merge(path: Path, results: dict[str, Any]) -> None:
    # Earlier entries of benchmarks not run this time are kept: "python -m benchmarks p2" updates p2.
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        existing = {}
    entries = existing.get("results", {}) if isinstance(existing, dict) else {}
    entries.update(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": dict(sorted(entries.items()))}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
