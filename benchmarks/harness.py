"""What the benchmarks share: results, the emulator, a connection, and a way to run the operator.

Nothing here imports Airflow at module level: ``python -m benchmarks`` must point ``AIRFLOW_HOME``
at a scratch folder before Airflow reads its configuration.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

#: The connection every benchmark defines (as an environment variable) and the operator uses.
BENCH_CONN_ID = "azerion_bench"
#: Where the repository is: children run from here so that ``python -m benchmarks...`` resolves.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Small, fast images for the benchmarks that measure per-request costs.
SMALL_IMAGE = {"size": "64x64"}


@dataclass
class BenchResult:
    """The outcome of one benchmark.

    :param key: the benchmark's name, e.g. ``"p1"``.
    :param title: what it measures, in a few words.
    :param metric: how ``value`` is computed, e.g. ``"execute() time / bare loop time"``.
    :param value: the measured figure compared with ``target`` (lower is better).
    :param target: the highest acceptable ``value``.
    :param unit: ``"x"`` for ratios, or the unit of ``value`` (e.g. ``"ms"``).
    :param figures: the raw measurements behind ``value``.
    :param notes: what a reader needs to interpret the figures.
    """

    key: str
    title: str
    metric: str
    value: float
    target: float
    unit: str = "x"
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether ``value`` meets ``target``."""
        return self.value <= self.target

    def summary(self) -> str:
        """One line: name, value, target and PASS or MISS."""
        verdict = "PASS" if self.passed else "MISS"
        return (
            f"{self.key} {self.title}: {self.value:.3f}{self.unit} "
            f"(target <= {self.target:g}{self.unit}) {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``.bench/results.json``."""
        return {
            "key": self.key,
            "title": self.title,
            "metric": self.metric,
            "value": self.value,
            "target": self.target,
            "unit": self.unit,
            "passed": self.passed,
            "figures": self.figures,
            "notes": self.notes,
        }


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (which must not be empty)."""
    return float(statistics.median(values))


def rotated(items: Sequence[str], by: int) -> list[str]:
    """``items`` rotated left by ``by``: each contender takes every position across rounds.

    Timings on a small machine drift (frequency, page cache, other tenants); rotating the order
    spreads the drift over every contender instead of always charging it to the same one.
    """
    shift = by % len(items)
    return [*items[shift:], *items[:shift]]


def new_api_key() -> str:
    """A throwaway key for one emulator; never printed."""
    return f"bench-{secrets.token_hex(8)}"


@contextlib.contextmanager
def emulator_process(api_key: str, *, start_timeout: float = 60.0, **knobs: Any) -> Iterator[str]:
    """Run the emulator in a process of its own and yield its base URL.

    A separate process keeps the server's work off the measured process: in the same process the
    server's thread would compete with the client's threads for the GIL, which a real deployment,
    talking to a remote API, never does.

    :param api_key: the key the emulator accepts (passed through the environment, not argv).
    :param start_timeout: seconds to wait for the emulator to listen.
    :param knobs: emulator CLI options, e.g. ``latency=0.2``, ``max_concurrency=16``, ``noise=True``.
    """
    args = [sys.executable, "-m", "airflow_provider_azerion.emulator.cli", "--host", "127.0.0.1"]
    args += ["--port", "0"]
    for name, value in knobs.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:
            args += [flag, str(value)]
    env = {**os.environ, "AZERION_EMULATOR_API_KEY": api_key}
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, env=env, text=True)
        try:
            base_url = _listening_url(proc, start_timeout)
            if base_url is None:
                errors.seek(0)
                tail = errors.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"The emulator did not start within {start_timeout:g} s:\n{tail}")
            yield base_url
        finally:
            terminate(proc)  # the CLI stops cleanly on SIGTERM


def terminate(proc: subprocess.Popen) -> None:
    """Stop a server process: SIGTERM, then SIGKILL after 10 s; close its output pipe."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def _listening_url(proc: subprocess.Popen[str], timeout: float) -> str | None:
    # The CLI prints one line once it accepts connections: "... listening on <base url> (API key: ...)".
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            match = re.search(r"listening on (\S+)", proc.stdout.readline())
            return match[1] if match else None
    return None


@contextlib.contextmanager
def bench_connection(base_url: str, api_key: str, **extra: Any) -> Iterator[str]:
    """Define connection :data:`BENCH_CONN_ID` for the emulator; yield its id.

    It is an ``AIRFLOW_CONN_*`` environment variable, restored afterwards, so no metadata
    database is needed and the test suite's own connections are left alone.

    :param extra: hook settings for the connection's extra, e.g. ``backoff_factor=0.01``.
    """
    name = f"AIRFLOW_CONN_{BENCH_CONN_ID.upper()}"
    previous = os.environ.get(name)
    os.environ[name] = json.dumps(
        {"conn_type": "azerion", "host": base_url, "password": api_key, "extra": extra}
    )
    try:
        yield BENCH_CONN_ID
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def connection_env(base_url: str, api_key: str, **extra: Any) -> dict[str, str]:
    """The environment variable of :func:`bench_connection`, for a child process."""
    value = json.dumps({"conn_type": "azerion", "host": base_url, "password": api_key, "extra": extra})
    return {f"AIRFLOW_CONN_{BENCH_CONN_ID.upper()}": value}


def run_operator(operator: ImageGenerationOperator, run_id: str) -> dict[str, Any]:
    """Call ``operator.execute()`` with the smallest context it reads: the task instance's identity.

    Not ``dag.test()``: a DAG run adds fixed costs (parsing and serialising the DAG, metadata-DB
    writes, the in-process Execution API) that any operator pays alike and that would drown the
    operator's own cost in the comparison.

    :param run_id: makes the output folder distinct, so no run skips another's stored images.
    :return: the operator's XCom (``count``, ``manifest_uri``, ``images`` while they fit...).
    """
    ti = SimpleNamespace(
        dag_id="benchmarks", run_id=run_id, task_id=operator.task_id, map_index=-1, try_number=1
    )
    return operator.execute({"ti": ti})  # type: ignore[typeddict-item]


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPUs, RAM, Python, Airflow, date."""
    from airflow_provider_azerion.compat import airflow_version

    mem_total = _proc_field("/proc/meminfo", "MemTotal")  # e.g. "24683656 kB"
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "ram_gib": round(int(mem_total.split()[0]) / 2**20, 1) if mem_total else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "airflow": airflow_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def _proc_field(path: str, name: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError:
        return ""
    match = re.search(rf"^{re.escape(name)}\s*:\s*(.+)$", text, re.MULTILINE)
    return match[1].strip() if match else ""
