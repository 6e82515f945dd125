"""P2, concurrency: 64 prompts at 16 in flight against an API that takes 200 ms per image.

The emulator (in its own process) sleeps ``latency`` seconds per generation and answers 429
beyond ``max_concurrency`` requests in flight; the operator runs with ``max_active_requests`` equal
to that cap. With no overhead at all the work takes ``ceil(prompts / concurrency) * latency``
seconds; the verdict is the median wall time of ``execute()`` over that ideal.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from benchmarks.harness import (
    SMALL_IMAGE,
    BenchResult,
    bench_connection,
    emulator_process,
    median,
    new_api_key,
    run_operator,
)

TARGET = 1.25
#: Sizes for the test suite's smoke run.
QUICK = {"prompts": 8, "concurrency": 4, "latency": 0.05, "rounds": 1}


def run(prompts: int = 64, concurrency: int = 16, latency: float = 0.2, rounds: int = 5) -> BenchResult:
    """Time ``execute()`` on ``prompts`` prompts, ``rounds`` times after one warm-up run.

    :param prompts: prompts per run.
    :param concurrency: the emulator's ``max_concurrency`` and the operator's ``max_active_requests``.
    :param latency: seconds the emulator takes per generation.
    :param rounds: measured runs.
    """
    from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

    texts = [f"concurrency prompt {i}" for i in range(prompts)]
    api_key = new_api_key()
    times: list[float] = []
    with (
        emulator_process(api_key, latency=latency, max_concurrency=concurrency) as base_url,
        bench_connection(base_url, api_key) as conn_id,
        tempfile.TemporaryDirectory(prefix="azerion-bench-p2-") as scratch,
    ):
        for round_index in range(-1, rounds):
            operator = ImageGenerationOperator(
                task_id="generate",
                prompt=texts,
                output_path=Path(scratch).as_uri(),
                conn_id=conn_id,
                extra_params=dict(SMALL_IMAGE),
                max_active_requests=concurrency,
            )
            started = time.perf_counter()
            result = run_operator(operator, run_id=f"round{round_index}")
            elapsed = time.perf_counter() - started
            assert result["count"] == prompts, f"stored {result['count']} of {prompts} images"
            if round_index >= 0:
                times.append(elapsed)

    ideal = math.ceil(prompts / concurrency) * latency
    return BenchResult(
        key="p2",
        title="concurrency: wall time vs ideal",
        metric=f"median execute() wall time / ideal ceil({prompts}/{concurrency}) x {latency:g} s",
        value=median(times) / ideal,
        target=TARGET,
        figures={
            "prompts": prompts,
            "concurrency": concurrency,
            "latency_s": latency,
            "rounds": rounds,
            "ideal_s": round(ideal, 4),
            "seconds": [round(t, 4) for t in times],
            "median_s": round(median(times), 4),
        },
        notes=[
            "Each execute() builds its own hook, so every run opens its connections anew, as a task does.",
        ],
    )
