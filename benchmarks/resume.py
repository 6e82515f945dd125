"""P6, resume at an object store's pace: a retry of a task whose prompts are all stored, on S3.

moto's S3 server runs in a process of its own behind :class:`~benchmarks.s3_latency.S3LatencyProxy`,
which adds ``latency`` (20 ms, a real store's) to every request. For each size, a task folder is
filled directly through moto (no latency): by the operator against the emulator for sizes up to
``generate_up_to``, synthetically above (the same files ``OutputFolder.store_prompt`` and
``write_manifest`` write, from one small JPEG). Then the operator's ``execute()`` runs again for
the same task instance through the proxy, as a retry would: it must find everything stored and
send no generation request. Each round starts with cold fsspec caches, as a new task process does.

Figures per size: the resume's wall time (median of ``rounds``), its storage requests by kind,
and the size of the XCom it returns. For ``measured`` prompts two more figures explain the
verdict: a resume after a crash that left no manifest (every sidecar read, 16 at a time), and
the way the operator resumed before the manifest existed, one sidecar GET after another.
The verdict is the resume time of ``measured`` prompts; the target is 5 s for 1 000 prompts.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.harness import BenchResult, median, new_api_key, run_operator
from benchmarks.s3_latency import aws_connection, remote_reset, remote_stats, s3_client, s3_process

TARGET = 5.0
#: A bucket per size: moto's listing cost grows with the whole bucket, S3's does not.
BUCKET = "azerion-bench-resume-{size}"
#: Connection ids: the proxy (measured, with latency) and moto itself (to fill folders quickly).
PROXIED, DIRECT = "azerion_bench_s3", "azerion_bench_s3_direct"
#: Sizes for the test suite's smoke run.
QUICK = {"sizes": (12,), "measured": 12, "rounds": 1, "generate_up_to": 12, "sequential_baseline": True}


def run(
    sizes: tuple[int, ...] = (100, 1000, 10000),
    measured: int = 1000,
    rounds: int = 3,
    latency: float = 0.02,
    generate_up_to: int = 1000,
    sequential_baseline: bool = True,
) -> BenchResult:
    """Resume tasks of ``sizes`` stored prompts on S3 with ``latency`` added to each request.

    :param sizes: prompts per task.
    :param measured: the size whose resume time is the verdict (must be in ``sizes``).
    :param rounds: resumes timed per size.
    :param latency: seconds the proxy adds to every storage request.
    :param generate_up_to: sizes up to this are generated through the emulator, larger ones written
        synthetically.
    :param sequential_baseline: also time the former resume (one sidecar GET after another) for
        ``measured`` prompts.
    """
    from airflow_provider_azerion.emulator.server import EmulatorServer

    if measured not in sizes:
        raise ValueError(f"measured={measured} must be one of sizes={sizes}")
    api_key = new_api_key()
    figures: dict[str, Any] = {"latency_s": latency, "by_size": {}}
    with (
        s3_process(latency) as (moto_url, proxy_url),
        EmulatorServer(api_key=api_key, host="127.0.0.1", max_side=16) as emulator,
    ):
        env = {
            f"AIRFLOW_CONN_{PROXIED.upper()}": json.dumps(aws_connection(proxy_url)),
            f"AIRFLOW_CONN_{DIRECT.upper()}": json.dumps(aws_connection(moto_url)),
            "AIRFLOW_CONN_AZERION_BENCH": json.dumps(
                {"conn_type": "azerion", "host": emulator.base_url, "password": api_key}
            ),
        }
        previous = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            for size in sizes:
                prompts = [f"resume prompt {i:05d}" for i in range(size)]
                run_id = f"resume-{size}"
                s3_client(moto_url).create_bucket(Bucket=BUCKET.format(size=size))
                if size <= generate_up_to:
                    run_operator(_operator(prompts, DIRECT), run_id)
                else:
                    _store_synthetic(prompts, run_id)
                generated = emulator.generation_count
                times: list[float] = []
                for _ in range(rounds):
                    seconds, result = _timed_resume(prompts, run_id, proxy_url)
                    times.append(seconds)
                    requests = remote_stats(proxy_url)["counts"]
                if emulator.generation_count != generated:
                    raise AssertionError(f"resuming {size} stored prompts sent generation requests")
                if result["count"] != size:
                    raise AssertionError(f"the resume of {size} prompts returned {result['count']} images")
                figures["by_size"][size] = {
                    "resume_s": round(median(times), 3),
                    "rounds_s": [round(t, 3) for t in times],
                    "listing_alone_s": _listing(size, run_id),
                    "requests": requests,
                    "xcom_bytes": len(json.dumps(result)),
                    "xcom_has_images": "images" in result,
                    "chunks": len(result["chunks"]),
                    "manifest_bytes": result["chunks"][-1]["byte_range"][1] if result["chunks"] else 0,
                }
                if size == measured:
                    figures["after_crash"] = _crash_resume(prompts, run_id, moto_url, proxy_url)
                    if sequential_baseline:
                        figures["sequential_sidecar_reads_s"] = _sequential_reads(size, run_id, proxy_url)
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    value = figures["by_size"][measured]["resume_s"]
    return BenchResult(
        key="p6",
        title=f"resume of {measured} stored prompts on S3 at +{latency * 1000:g} ms a request",
        metric="median execute() wall time of a retry that finds every prompt stored",
        value=value,
        target=TARGET,
        unit="s",
        figures=figures,
        notes=[
            "resume: one listing (1 000 keys a page) and one manifest GET, no sidecar read",
            "after_crash: no manifest, so every first sidecar is read, 16 at a time, then rewritten",
        ],
    )


def _operator(prompts: list[str], output_conn_id: str) -> Any:
    from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

    return ImageGenerationOperator(
        task_id="generate",
        prompt=prompts,
        output_path=f"s3://{BUCKET.format(size=len(prompts))}/runs/",
        output_conn_id=output_conn_id,
        conn_id="azerion_bench",
        extra_params={"size": "16x16"},
        max_active_requests=16,
        max_prompts=max(len(prompts), 1000),
    )


def _cold_caches() -> None:
    """Forget fsspec's listings, as a new task process has none."""
    from airflow.sdk import ObjectStoragePath

    for conn_id in (PROXIED, DIRECT):
        ObjectStoragePath("s3://any-bucket/", conn_id=conn_id).fs.invalidate_cache()


def _folder(size: int, run_id: str, conn_id: str = PROXIED) -> Any:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(
        f"s3://{BUCKET.format(size=size)}/runs/benchmarks/{run_id}/generate", conn_id=conn_id
    )


def _listing(size: int, run_id: str) -> float:
    """The time of the task folder's listing alone (cold), the part of a resume the store sets."""
    _cold_caches()
    folder = _folder(size, run_id)
    started = time.perf_counter()
    folder.fs.ls(folder.path, detail=True)
    return round(time.perf_counter() - started, 3)


def _timed_resume(prompts: list[str], run_id: str, proxy_url: str) -> tuple[float, dict[str, Any]]:
    """One resume through the proxy, from cold caches: its wall time and its XCom."""
    _cold_caches()
    operator = _operator(prompts, PROXIED)
    remote_reset(proxy_url)
    started = time.perf_counter()
    result = run_operator(operator, run_id)
    return time.perf_counter() - started, result


def _crash_resume(prompts: list[str], run_id: str, moto_url: str, proxy_url: str) -> dict[str, Any]:
    """Resume once with the manifest gone, as after a crash before it was written."""
    folder = f"runs/benchmarks/{run_id}/generate"
    s3_client(moto_url).delete_object(Bucket=BUCKET.format(size=len(prompts)), Key=f"{folder}/manifest.jsonl")
    seconds, _ = _timed_resume(prompts, run_id, proxy_url)
    return {"resume_s": round(seconds, 3), "requests": remote_stats(proxy_url)["counts"]}


def _sequential_reads(size: int, run_id: str, proxy_url: str) -> float:
    """The resume before the manifest: one listing, then one sidecar GET after another."""
    _cold_caches()
    folder = _folder(size, run_id)
    started = time.perf_counter()
    folder.fs.ls(folder.path, detail=True)
    for index in range(size):
        json.loads(folder.fs.cat_file(f"{folder.path}/{index:04d}-0.json"))
    return round(time.perf_counter() - started, 3)


def _store_synthetic(prompts: list[str], run_id: str) -> None:
    """Fill a task folder as the operator would have, without generating: one tiny JPEG each."""
    import base64

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_azerion.folder import OutputFolder, TaskIdentity
    from airflow_provider_azerion.image_formats import sniff_image_format

    # A valid 1x1 JPEG: the listing and sidecars are what a resume reads, never the pixels.
    jpeg = base64.b64decode(
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwc"
        "KDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAA"
        "AAAAAAAAAAD/2gAIAQEAAD8AKp//2Q=="
    )
    fmt = sniff_image_format(jpeg)
    assert fmt is not None
    operator = _operator(prompts, DIRECT)
    identity = TaskIdentity(dag_id="benchmarks", run_id=run_id, task_id="generate")
    root = ObjectStoragePath(f"s3://{BUCKET.format(size=len(prompts))}/runs/", conn_id=DIRECT)
    folder = OutputFolder(root, identity)
    common = {
        "model": operator.model,
        "style": None,
        "params": operator.api_params(),
        "created": "2026-01-01T00:00:00+00:00",
        "usage": None,
        "request_id": None,
    }
    with ThreadPoolExecutor(max_workers=16) as pool:
        stored = list(
            pool.map(
                lambda index: folder.store_prompt(
                    index, [(jpeg, fmt, None)], {**common, "prompt": prompts[index]}
                ),
                range(len(prompts)),
            )
        )
    folder.write_manifest([image for images in stored for image in images])
