"""A Celery worker SIGKILLed mid-batch: the scheduler fails its task, the other worker resumes it.

The worker's process group (Celery's pool, the log server) and its task processes (Airflow 3.3
puts each in a group of its own) all die at once, as when a machine is lost. No heartbeat reaches
the API server any more, so the scheduler fails the task instance after ``[scheduler]
task_instance_heartbeat_timeout`` (shortened by scripts/cluster.py) and queues its retry, which
only the surviving worker can take. The retry skips what the killed try stored completely (image
and sidecar): the only generations paid twice are those of prompts in flight at the kill, and the
only images written twice are those the kill caught between image and sidecar.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from urllib.parse import quote

import psutil
import pytest

from tests.cluster.cluster import s3_objects, s3_put_counts
from tests.cluster.conftest import BUCKET

DAG_ID = "azerion_cluster_batch"
PROMPTS, LATENCY = 30, 2.0
STORED_BEFORE_KILL = 4


def kill_worker(pid: int) -> list[int]:
    """SIGKILL the worker's process group and the groups of every process below it; return the pids."""
    leader = psutil.Process(pid)
    family = [leader, *leader.children(recursive=True)]
    groups = {os.getpgid(p.pid) for p in family if p.is_running()} - {os.getpgrp()}
    for group in groups:
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    return [p.pid for p in family]


def wait_until(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.3)
    return result


@pytest.mark.timeout(600)
def test_a_killed_workers_task_resumes_on_the_other_worker_storing_each_image_once(cluster):
    cluster.emulator(reset=True, latency=LATENCY)
    run_id = cluster.trigger(DAG_ID, {"prompts": PROMPTS, "bucket": BUCKET, "prefix": "kill"})

    def generating_ti():
        tis = [ti for ti in cluster.task_instances(DAG_ID, run_id) if ti["task_id"] == "generate"]
        return tis[0] if tis and tis[0]["state"] == "running" and tis[0]["hostname"] else None

    first = wait_until("the generate task running", generating_ti, 120)

    def stored() -> bool:
        return sum(g["status"] == 200 for g in cluster.emulator_stats()["generations"]) >= STORED_BEFORE_KILL

    wait_until(f"{STORED_BEFORE_KILL} images generated", stored, 120)
    victim = first["hostname"].split(".")[0]  # worker-1.localhost -> worker-1
    killed = kill_worker(cluster.state["pids"][victim])
    time.sleep(1)  # requests fully sent before the kill land; nothing else writes until the retry
    client = cluster.s3()
    prefix = f"kill/{DAG_ID}/"
    at_kill = set(s3_objects(client, BUCKET, prefix))
    complete = {key.removesuffix("-0.json") for key in at_kill if key.endswith("-0.json")}
    # Generations received, answered or not, for prompts not stored completely (image and sidecar).
    in_flight_at_kill = cluster.emulator_stats()["generation_count"] - len(complete)
    cluster.emulator(latency=0.2)  # the resumed try need not wait as long

    state = cluster.wait_for_run(DAG_ID, run_id, timeout=240)

    (ti,) = [ti for ti in cluster.task_instances(DAG_ID, run_id) if ti["task_id"] == "generate"]
    tries = cluster.api(
        "GET", f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/generate/tries"
    )
    by_try = {t["try_number"]: (t["state"], t["hostname"]) for t in tries["task_instances"]}
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in killed)
    assert state == "success"
    assert by_try[1] == ("failed", first["hostname"]), "the scheduler failed the dead worker's try"
    assert by_try[ti["try_number"]] == ("success", ti["hostname"])
    assert ti["try_number"] >= 2
    assert ti["hostname"] != first["hostname"]
    images = [key for key in s3_objects(client, BUCKET, prefix) if key.endswith(".jpg")]
    assert len(images) == PROMPTS
    puts = s3_put_counts(client, BUCKET, prefix)
    # Stored once, except an image the kill caught before its sidecar: the retry stores it again.
    assert complete
    assert all(puts[key] == 1 for key in images if key.removesuffix("-0.jpg") in complete)
    assert all(puts[key] <= 2 for key in images)
    served = cluster.emulator_stats()["generation_count"]
    assert 0 <= in_flight_at_kill < PROMPTS - STORED_BEFORE_KILL
    assert PROMPTS <= served <= PROMPTS + in_flight_at_kill, "only prompts in flight at the kill paid twice"
