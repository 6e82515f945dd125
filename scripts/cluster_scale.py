"""The 2 000-prompt scale run on ``make cluster``: CeleryExecutor, two workers, S3, 10 % faults.

The Celery counterpart of ``tests/scale/test_scale_run.py`` (same DAG, ``azerion_scale_run`` in
``tests/dags``; same fault mix and seed): one DAG run of 20 mapped tasks of 100 prompts, each task
sending ``max_active_requests=4`` generations at a time, on a cluster of its own brought up in a
temporary folder with ``scripts/cluster.py``. Images go to moto's S3 server through the counting
proxy of ``benchmarks/s3_latency.py`` (run here, reached through an ``aws_scale`` connection
stored in the metadata DB). The emulator answers each generation after ``--latency`` seconds.

Printed: the wall time (trigger to run end), the ideal (prompts x latency / requests in flight,
in flight = workers x worker concurrency x 4), generation requests and faults, task tries,
storage requests per image, and whether every image was stored exactly once. Rerun with::

    .venv/bin/python scripts/cluster_scale.py [--latency 0.2] [--keep]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.s3_latency import S3LatencyProxy, aws_connection, s3_client  # noqa: E402
from tests.cluster.cluster import Cluster  # noqa: E402
from tests.scale.test_scale_run import FAULT_KINDS, SEED  # noqa: E402

DAG_ID = "azerion_scale_run"
BUCKET = "azerion-scale-run"
REQUESTS_PER_TASK = 4  # the DAG's max_active_requests


def cluster_command(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> None:
    """Run ``scripts/cluster.py`` with ``args``; stop with its output if it fails."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "cluster.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        sys.exit(f"scripts/cluster.py {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print(done.stdout.strip(), flush=True)


def add_connection(cluster: Cluster, conn_id: str, connection: dict) -> None:
    """Store ``connection`` in the cluster's metadata DB with ``airflow connections add``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | cluster.state["airflow_env"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "connections",
            "add",
            conn_id,
            "--conn-json",
            json.dumps(connection),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        sys.exit(f"airflow connections add {conn_id} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def scale_run(cluster: Cluster, args: argparse.Namespace) -> dict:
    """Run the DAG once on ``cluster``; return the figures."""
    moto = cluster.moto_url
    client = s3_client(moto)
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    with S3LatencyProxy(moto) as proxy:
        add_connection(cluster, "aws_scale", aws_connection(proxy.url))
        cluster.emulator(reset=True, latency=args.latency, retry_after=0.01)
        cluster.emulator(fault_rate=args.fault_rate, fault_kinds=list(FAULT_KINDS), seed=SEED)
        cluster.wait_for_dag(DAG_ID)
        proxy.reset()
        conf = {"prompts": args.prompts, "chunk": args.chunk, "output_path": f"s3://{BUCKET}/scale/"}
        started = time.monotonic()
        run_id = cluster.trigger(DAG_ID, conf | {"aws_conn_id": "aws_scale"})
        state = cluster.wait_for_run(DAG_ID, run_id, timeout=args.timeout)
        wall = time.monotonic() - started
        storage = proxy.requests
    run = cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
    tis = [ti for ti in cluster.task_instances(DAG_ID, run_id) if ti["task_id"] == "generate"]
    generations = cluster.emulator_stats()["generations"]
    versions = collections.Counter()
    for page in client.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix="scale/"):
        versions.update(version["Key"] for version in page.get("Versions", []))
    images = {key: n for key, n in versions.items() if key.endswith(".jpg")}
    clean = collections.Counter(g["prompt"] for g in generations if g["status"] == 200 and not g["fault"])
    in_flight = 2 * args.worker_concurrency * REQUESTS_PER_TASK
    ideal = args.prompts * args.latency / in_flight
    kinds = collections.Counter(request.kind for request in storage)
    return {
        "state": state,
        "wall_seconds": round(wall, 1),
        "run_seconds_by_airflow": run.get("duration"),
        "ideal_seconds": round(ideal, 2),
        "wall_over_ideal": round(wall / ideal, 2) if ideal else None,
        "requests_in_flight": in_flight,
        "generation_requests": len(generations),
        "faults": dict(collections.Counter(g["fault"] for g in generations if g["fault"])),
        "prompts_generated_twice": sum(n > 1 for n in clean.values()),
        "task_tries": sorted(ti["try_number"] for ti in tis),
        "workers": dict(collections.Counter(ti["hostname"] for ti in tis)),
        "images_stored": len(images),
        "images_stored_more_than_once": sum(n > 1 for n in images.values()),
        "storage_requests": dict(kinds),
        "storage_requests_per_image": round(len(storage) / args.prompts, 3),
    }


def main() -> int:
    """Bring a cluster up, run the scale run, print its figures, bring the cluster down."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per generation")
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--worker-concurrency", type=int, default=4, help="task slots per worker")
    parser.add_argument("--timeout", type=float, default=900, help="seconds the run may take")
    parser.add_argument(
        "--keep", action="store_true", help="leave the cluster up (and its folder) afterwards"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="azerion-scale-"))
    folder.chmod(0o755)  # PostgreSQL runs as the postgres user and must reach its data
    env = {**os.environ, "AZERION_CLUSTER_API_KEY": f"scale-{secrets.token_urlsafe(12)}"}
    up = ["up", "--dir", str(folder), "--extra-dags", str(REPO / "tests" / "dags")]
    started = time.monotonic()
    cluster_command(*up, "--worker-concurrency", str(args.worker_concurrency), env=env)
    up_seconds = time.monotonic() - started
    try:
        figures = scale_run(Cluster(folder), args) | {"cluster_up_seconds": round(up_seconds, 1)}
    finally:
        if not args.keep:
            cluster_command("down", "--dir", str(folder))
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    ok = figures["state"] == "success" and figures["images_stored"] == args.prompts
    ok = ok and figures["images_stored_more_than_once"] == 0 and figures["prompts_generated_twice"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
