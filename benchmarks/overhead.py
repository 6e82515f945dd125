"""P1, overhead: ``ImageGenerationOperator.execute()`` against a bare loop doing the minimum.

Both generate the same prompts, one request at a time (``max_active_requests=1``), from an
emulator in its own process answering at once (latency 0) with 64x64 images, and write into a
fresh temporary folder each round. Rounds are interleaved, their order rotated, and the verdict
is the median of the per-round ratios, after one warm-up round.

More contenders explain the verdict without entering it:

- the *durable loop*: the bare loop plus the storage contract the operator keeps, a JSON sidecar
  with a SHA-256 per image and each file written to a temporary name, ``fsync``-ed and renamed.
  It is what any code keeping that contract pays;
- the operator with ``os.fsync`` made a no-op for its run (a diagnostic only: it drops the
  durability the operator promises), which tells how much of the gap the disk's flushes are;
- the operator and the bare loop writing to a memory file system (``/dev/shm``, where it is a
  tmpfs), where creating a file costs microseconds: the operator's own cost without the disk's.

Before the first round and after the last, the benchmark times the creation of small files in its
scratch folder (``file_create_ms``): on
the VM these figures come from, it varies from 0.05 to 1 ms per file with the file system's
recent history, and the storage contract creates two files per image where the bare loop
creates one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.harness import (
    SMALL_IMAGE,
    BenchResult,
    bench_connection,
    emulator_process,
    median,
    new_api_key,
    rotated,
    run_operator,
)

TARGET = 1.10
MODEL = "stable-image-core-1.1"
#: Sizes for the test suite's smoke run.
QUICK = {"prompts": 4, "rounds": 1}


def run(prompts: int = 200, rounds: int = 5) -> BenchResult:
    """Time the operator and both loops on ``prompts`` prompts, ``rounds`` interleaved rounds.

    :param prompts: prompts per contender and round.
    :param rounds: measured rounds (one more, unmeasured, warms up).
    """
    texts = [f"benchmark prompt {i}" for i in range(prompts)]
    api_key = new_api_key()
    with (
        emulator_process(api_key) as base_url,
        bench_connection(base_url, api_key) as conn_id,
        tempfile.TemporaryDirectory(prefix="azerion-bench-p1-") as scratch,
    ):
        contenders: dict[str, Callable[[Path], float]] = {
            "operator": lambda folder: _operator(folder, texts, conn_id),
            "bare_loop": lambda folder: _loop(folder, texts, base_url, api_key, durable=False),
            "durable_loop": lambda folder: _loop(folder, texts, base_url, api_key, durable=True),
            "operator_without_fsync": lambda folder: _operator(folder, texts, conn_id, fsync=False),
        }
        in_memory = _memory_scratch()
        if in_memory is not None:
            contenders["operator_tmpfs"] = contenders["operator"]
            contenders["bare_loop_tmpfs"] = contenders["bare_loop"]
        times: dict[str, list[float]] = {name: [] for name in contenders}
        file_create_ms: list[float] = []
        # The disk probe runs before the warm-up and after the last round, never between rounds,
        # where its files' clean-up would slow whichever contender came next.
        file_create_ms.append(_file_create_ms(Path(scratch) / "probe-before"))
        for round_index in range(-1, rounds):  # round -1 warms up the emulator's cache and imports
            for name in rotated(list(contenders), round_index):
                base = in_memory if name.endswith("_tmpfs") and in_memory is not None else Path(scratch)
                folder = base / f"round{round_index}-{name}"
                elapsed = contenders[name](folder)
                shutil.rmtree(folder)
                # Untimed: the disk work a contender leaves behind (the bare loop's unflushed
                # files, the deleted folder) must not land in the next contender's time.
                os.sync()
                if round_index >= 0:
                    times[name].append(elapsed)
        file_create_ms.append(_file_create_ms(Path(scratch) / "probe-after"))
        if in_memory is not None:
            shutil.rmtree(in_memory, ignore_errors=True)

    def paired(numerator: str, denominator: str) -> list[float]:
        # Ratios within a round share that round's machine state; their median is the figure.
        return [a / b for a, b in zip(times[numerator], times[denominator], strict=True)]

    per_round = paired("operator", "bare_loop")
    return BenchResult(
        key="p1",
        title="operator overhead vs a bare loop",
        metric="median over rounds of execute() time / bare loop time",
        value=median(per_round),
        target=TARGET,
        figures={
            "prompts": prompts,
            "rounds": rounds,
            "seconds": {name: [round(t, 4) for t in values] for name, values in times.items()},
            "median_seconds": {name: round(median(values), 4) for name, values in times.items()},
            "ms_per_image": {
                name: round(median(values) / prompts * 1000, 3) for name, values in times.items()
            },
            "ratio_per_round": [round(r, 3) for r in per_round],
            "ratio_of_medians": round(median(times["operator"]) / median(times["bare_loop"]), 3),
            "durable_loop_vs_bare_loop": round(median(paired("durable_loop", "bare_loop")), 3),
            "operator_vs_durable_loop": round(median(paired("operator", "durable_loop")), 3),
            "operator_without_fsync_vs_bare_loop": round(
                median(paired("operator_without_fsync", "bare_loop")), 3
            ),
            **(
                {"tmpfs_operator_vs_bare_loop": round(median(paired("operator_tmpfs", "bare_loop_tmpfs")), 3)}
                if in_memory is not None
                else {}
            ),
            "scratch": scratch,
            "file_create_ms": [round(ms, 3) for ms in file_create_ms],
        },
        notes=[
            "execute() is called with a minimal context (no dag.test()); see BENCHMARKS.md.",
            "durable_loop = bare loop + sidecar + temp file, fsync and rename per file (the "
            "operator's storage contract); operator_vs_durable_loop is the operator's own overhead.",
            "operator_without_fsync is a diagnostic (os.fsync disabled for that run), not a product path.",
            "*_tmpfs write to /dev/shm: the operator's cost without the disk's; file_create_ms is the "
            "cost of creating one small file in the scratch folder, before the first round and after "
            "the last.",
        ],
    )


def _memory_scratch() -> Path | None:
    """A fresh folder on a memory file system (``/dev/shm`` when it is a tmpfs), or ``None``."""
    try:
        with open("/proc/mounts") as mounts:
            if not any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts):
                return None
        return Path(tempfile.mkdtemp(prefix="azerion-bench-p1-", dir="/dev/shm"))
    except OSError:
        return None


def _file_create_ms(folder: Path, files: int = 100) -> float:
    """Median milliseconds to create (and write 1.5 KB to) one new file in ``folder``."""
    folder.mkdir(parents=True)
    data = os.urandom(1500)
    times = []
    for index in range(files):
        started = time.perf_counter()
        (folder / f"{index:04d}.jpg").write_bytes(data)
        times.append((time.perf_counter() - started) * 1000)
    shutil.rmtree(folder)
    return statistics.median(times)


def _operator(folder: Path, texts: list[str], conn_id: str, *, fsync: bool = True) -> float:
    from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

    operator = ImageGenerationOperator(
        task_id="generate",
        prompt=texts,
        output_path=folder.as_uri(),
        conn_id=conn_id,
        extra_params=dict(SMALL_IMAGE),
        max_active_requests=1,
    )
    with contextlib.nullcontext() if fsync else _no_fsync():
        started = time.perf_counter()
        result = run_operator(operator, run_id=folder.name)
        elapsed = time.perf_counter() - started
    assert result["count"] == len(texts), f"operator stored {result['count']} of {len(texts)} images"
    return elapsed


@contextlib.contextmanager
def _no_fsync() -> Iterator[None]:
    real = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = real


def _loop(folder: Path, texts: list[str], base_url: str, api_key: str, *, durable: bool) -> float:
    import requests

    started = time.perf_counter()
    folder.mkdir(parents=True)
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {api_key}"
        for index, prompt in enumerate(texts):
            response = session.post(
                f"{base_url}/images/generations",
                json={"model": MODEL, "prompt": prompt, "response_format": "b64_json", **SMALL_IMAGE},
                timeout=(10, 300),
            )
            response.raise_for_status()
            data = base64.b64decode(response.json()["data"][0]["b64_json"])
            if durable:
                _write_durably(folder / f"{index:04d}-0.jpg", data)
                sidecar = {"prompt": prompt, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                _write_durably(folder / f"{index:04d}-0.json", json.dumps(sidecar).encode())
            else:
                (folder / f"{index:04d}-0.jpg").write_bytes(data)
    elapsed = time.perf_counter() - started
    assert len(list(folder.iterdir())) == len(texts) * (2 if durable else 1)
    return elapsed


def _write_durably(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.partial")
    with open(temp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
