"""P4, DAG-parse cost: what importing the operator module adds to a DAG file that imports Airflow.

Fresh interpreters, alternating two programs:

- A: ``import airflow.sdk``
- B: ``import airflow.sdk; import airflow_provider_azerion.operators.image_generation``

Each child times its imports with ``perf_counter`` and the parent times the whole child. The
verdict is the median time B spends on its second import, measured inside B, since it excludes
interpreter start-up and the noise of the 2-4 s ``airflow.sdk`` import. The differences of
medians B - A (in-child and wall clock), as asked for, are reported next to it; on a small
machine their noise (see the spreads) is larger than the quantity itself.

Where ``PYTHONDONTWRITEBYTECODE`` is set no ``.pyc`` is cached, so every child compiles the
module from source; ``compile_ms`` reports that share (an installed wheel ships its bytecode).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchResult, median

TARGET_MS = 30.0
OPERATOR_MODULE = "airflow_provider_azerion.operators.image_generation"
#: Sizes for the test suite's smoke run.
QUICK = {"rounds": 1, "warmup": False}

_PROGRAM = """
import json, sys, time
started = time.perf_counter()
import airflow.sdk
sdk_done = time.perf_counter()
if sys.argv[1] == "B":
    import {module}
done = time.perf_counter()
print(json.dumps({{"sdk_s": sdk_done - started, "operator_s": done - sdk_done, "total_s": done - started}}))
"""


def run(rounds: int = 7, warmup: bool = True) -> BenchResult:
    """Run ``rounds`` pairs of fresh interpreters (A then B, alternating which goes first).

    :param rounds: pairs measured; at least 5 for a stable median.
    :param warmup: run one unmeasured pair first (bytecode caches, page cache).
    """
    program = _PROGRAM.format(module=OPERATOR_MODULE)
    samples: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="azerion-bench-p4-") as home:
        # A scratch AIRFLOW_HOME: importing Airflow must not create or read anyone's real one.
        env = {**os.environ, "AIRFLOW_HOME": home}
        for round_index in range(-1 if warmup else 0, rounds):
            for variant in "AB" if round_index % 2 == 0 else "BA":
                sample = _child(program, variant, env)
                if round_index >= 0:
                    samples[variant].append(sample)

    def ms(values: list[float]) -> float:
        return round(median(values) * 1000, 1)

    def spread(values: list[float]) -> float:
        return round((max(values) - min(values)) * 1000, 1)

    operator_ms = ms([s["operator_s"] for s in samples["B"]])
    compile_ms = ms([_compile_seconds() for _ in range(5)])
    a_total = [s["total_s"] for s in samples["A"]]
    b_total = [s["total_s"] for s in samples["B"]]
    a_wall = [s["wall_s"] for s in samples["A"]]
    b_wall = [s["wall_s"] for s in samples["B"]]
    figures: dict[str, Any] = {
        "rounds": rounds,
        "operator_import_ms_per_child": [round(s["operator_s"] * 1000, 1) for s in samples["B"]],
        "operator_import_median_ms": operator_ms,
        "compile_ms": compile_ms,
        "bytecode_cached": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "sdk_import_median_ms": ms([s["sdk_s"] for s in samples["A"] + samples["B"]]),
        "in_child_A_median_ms": ms(a_total),
        "in_child_B_median_ms": ms(b_total),
        "in_child_difference_ms": round(ms(b_total) - ms(a_total), 1),
        "wall_A_median_ms": ms(a_wall),
        "wall_B_median_ms": ms(b_wall),
        "wall_difference_ms": round(ms(b_wall) - ms(a_wall), 1),
        "wall_spread_ms": {"A": spread(a_wall), "B": spread(b_wall)},
    }
    return BenchResult(
        key="p4",
        title="DAG-parse cost of the operator import",
        metric="median time of the operator import on top of airflow.sdk, in fresh interpreters",
        value=operator_ms,
        target=TARGET_MS,
        unit=" ms",
        figures=figures,
        notes=["wall_difference_ms is B - A over whole interpreters; compare it with wall_spread_ms."],
    )


def _child(program: str, variant: str, env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", program, variant],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"import child {variant} failed:\n{completed.stderr[-3000:]}")
    sample: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    sample["wall_s"] = wall
    return sample


def _compile_seconds() -> float:
    """Seconds to compile the operator module's source, what a child without bytecode pays."""
    import importlib.util

    spec = importlib.util.find_spec(OPERATOR_MODULE)
    origin = spec.origin if spec else None
    assert origin is not None, f"{OPERATOR_MODULE} has no source file"
    source = Path(origin).read_text(encoding="utf-8")
    started = time.perf_counter()
    compile(source, origin, "exec")
    return time.perf_counter() - started
