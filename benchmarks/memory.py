"""P3, memory: how much a task's memory grows to deliver one 16 MiB image sent as ``b64_json``.

The emulator (in its own process, ``noise=True`` so PNG cannot compress) renders a 2400x2400 PNG
of about 16.5 MiB, sent as about 22 MiB of base64 inside JSON. A fresh child process runs the
operator's ``execute()`` on it and reports its peak resident set size above the baseline:

1. it imports everything and runs one small generation first, so lazy imports, connection
   pools and caches are in place and not charged to the large image;
2. it resets the kernel's high-water mark (``/proc/self/clear_refs``), takes the resident size
   as the baseline, runs the large generation, and reads the high-water mark (``VmHWM``) again.

Where ``clear_refs`` cannot be written, ``ru_maxrss`` after the run minus the resident size
before it is reported instead: an upper bound, as the peak may predate the baseline.

RSS is what the worker's memory limit sees, allocator slack included. A separate child run
under ``tracemalloc`` gives the Python-heap peak as a cross-check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from benchmarks.harness import (
    BENCH_CONN_ID,
    REPO_ROOT,
    BenchResult,
    connection_env,
    emulator_process,
    median,
    new_api_key,
    run_operator,
)

TARGET = 3.0
#: Sizes for the test suite's smoke run.
QUICK = {"size": "512x512", "rounds": 1, "trace": False}


def run(size: str = "2400x2400", rounds: int = 3, trace: bool = True) -> BenchResult:
    """Measure ``rounds`` fresh children (plus one under ``tracemalloc`` if ``trace``).

    :param size: ``WIDTHxHEIGHT`` of the PNG of noise to generate.
    :param rounds: children measured by RSS; the verdict uses their median.
    :param trace: also run one child under ``tracemalloc``.
    """
    api_key = new_api_key()
    children: list[dict[str, Any]] = []
    traced: dict[str, Any] | None = None
    with (
        emulator_process(api_key, noise=True) as base_url,
        tempfile.TemporaryDirectory(prefix="azerion-bench-p3-") as scratch,
    ):
        env = {**os.environ, **connection_env(base_url, api_key)}
        for index in range(rounds):
            children.append(_child(env, size, os.path.join(scratch, f"rss{index}"), "rss"))
        if trace:
            traced = _child(env, size, os.path.join(scratch, "trace"), "tracemalloc")

    image_bytes = children[0]["image_bytes"]
    growth = median([child["growth"] for child in children])
    mib = 2**20
    figures: dict[str, Any] = {
        "size": size,
        "image_mib": round(image_bytes / mib, 2),
        "rounds": rounds,
        "method": children[0]["method"],
        "rss_growth_mib": [round(child["growth"] / mib, 1) for child in children],
        "median_rss_growth_mib": round(growth / mib, 1),
        "baseline_rss_mib": round(children[0]["baseline"] / mib, 1),
    }
    if traced is not None:
        figures["tracemalloc_peak_mib"] = round(traced["growth"] / mib, 1)
        figures["tracemalloc_ratio"] = round(traced["growth"] / image_bytes, 3)
    return BenchResult(
        key="p3",
        title="memory: peak RSS growth vs image size",
        metric="median peak RSS growth of a fresh process running execute() / image bytes",
        value=growth / image_bytes,
        target=TARGET,
        figures=figures,
        notes=[
            "base64 makes the JSON body 4/3 of the image; parsing it with the standard json module "
            "needs the body twice at one moment (its text and the parsed string), so about 2.67x "
            "is the floor for b64_json.",
        ],
    )


def _child(env: dict[str, str], size: str, output: str, mode: str) -> dict[str, Any]:
    args = json.dumps({"size": size, "output": output, "mode": mode})
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _measure(size: str, output: str, mode: str) -> dict[str, Any]:
    """The child's side: warm up, reset the peak, generate one large image, report the growth."""
    import gc
    import resource
    import tracemalloc

    from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

    def generate(run_id: str, image_size: str) -> dict[str, Any]:
        operator = ImageGenerationOperator(
            task_id="generate",
            prompt="a field of noise",
            output_path=f"file://{output}",
            conn_id=BENCH_CONN_ID,
            extra_params={"size": image_size, "output_format": "png"},
            max_active_requests=1,
        )
        return run_operator(operator, run_id)

    generate("warmup", "64x64")
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        result = generate("measured", size)
        growth = tracemalloc.get_traced_memory()[1] - baseline
        method = "tracemalloc"
    elif _reset_peak_rss():
        baseline = _status_bytes("VmRSS")
        result = generate("measured", size)
        growth = _status_bytes("VmHWM") - baseline
        method = "VmHWM after clear_refs"
    else:
        baseline = _status_bytes("VmRSS")
        result = generate("measured", size)
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
        method = "ru_maxrss (upper bound)"
    return {
        "image_bytes": result["images"][0]["bytes"],
        "growth": growth,
        "baseline": baseline,
        "method": method,
    }


def _reset_peak_rss() -> bool:
    # Writing "5" resets the peak resident set size the kernel tracks (Linux 4.0+).
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _status_bytes(name: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {name}")


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    print(json.dumps(_measure(options["size"], options["output"], options["mode"])))
