"""P5, retry efficiency: requests sent per image delivered when 20 % of requests fail with 503.

The emulator (here in this process, for its request log; nothing is timed) fails each generation
request with probability ``rate`` from a seeded generator. The operator stores ``images`` prompts
with the hook's default ``max_attempts`` and a tiny backoff (from the connection's extra), and the
verdict is the number of generation requests in the emulator's log per image stored.

A client that retries only what failed sends ``1 / (1 - rate)`` requests per image on average
(1.25 at 20 %); more would mean duplicate or wasted requests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.harness import SMALL_IMAGE, BenchResult, bench_connection, new_api_key, run_operator

TARGET = 1.35
#: Sizes for the test suite's smoke run.
QUICK = {"images": 10}


def run(images: int = 100, rate: float = 0.2, seed: int = 2024, concurrency: int = 4) -> BenchResult:
    """Store ``images`` prompts against an emulator failing ``rate`` of requests with 503.

    :param images: prompts (one image each).
    :param rate: probability of a 503 per generation request.
    :param seed: seed of the emulator's fault generator.
    :param concurrency: the operator's ``max_active_requests``.
    """
    from airflow_provider_azerion.emulator.server import EmulatorServer
    from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

    api_key = new_api_key()
    with (
        EmulatorServer(api_key=api_key, host="127.0.0.1") as server,
        bench_connection(server.base_url, api_key, backoff_factor=0.01, max_retry_wait=0.05) as conn_id,
        tempfile.TemporaryDirectory(prefix="azerion-bench-p5-") as scratch,
    ):
        server.faults.set_rate(rate, kinds=["503"], seed=seed)
        operator = ImageGenerationOperator(
            task_id="generate",
            prompt=[f"retry prompt {i}" for i in range(images)],
            output_path=Path(scratch).as_uri(),
            conn_id=conn_id,
            extra_params=dict(SMALL_IMAGE),
            max_active_requests=concurrency,
        )
        result = run_operator(operator, run_id="retries")
        records = server.requests_to("/images/generations")

    delivered = result["count"]
    faults = sum(1 for record in records if record.fault == "503")
    assert delivered == images, f"stored {delivered} of {images} images"
    return BenchResult(
        key="p5",
        title="retry efficiency: requests per image",
        metric="generation requests in the emulator's log / images stored",
        value=len(records) / delivered,
        target=TARGET,
        figures={
            "images": images,
            "rate": rate,
            "seed": seed,
            "requests": len(records),
            "injected_503": faults,
            "delivered": delivered,
            "expected_requests_per_image": round(1 / (1 - rate), 4),
        },
    )
