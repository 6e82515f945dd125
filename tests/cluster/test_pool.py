"""An Airflow pool caps the generation requests in flight across both Celery workers."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import BUCKET

DAG_ID = "azerion_cluster_pool"
SLOTS, TASKS, PROMPTS = 2, 6, 3


@pytest.mark.timeout(600)
def test_the_pool_caps_the_requests_in_flight_across_the_workers(cluster):
    cluster.pool("azerion_cluster", slots=SLOTS)
    cluster.emulator(reset=True, latency=0.5)

    run_id = cluster.trigger(DAG_ID, {"tasks": TASKS, "prompts": PROMPTS, "bucket": BUCKET, "prefix": "pool"})
    state = cluster.wait_for_run(DAG_ID, run_id)

    stats = cluster.emulator_stats()
    generate = [ti for ti in cluster.task_instances(DAG_ID, run_id) if ti["task_id"] == "generate"]
    assert state == "success"
    assert len(generate) == TASKS
    assert stats["generation_count"] == TASKS * PROMPTS
    # Each task sends one request at a time (max_active_requests=1) and takes one of the slots.
    assert stats["peak_concurrency"] <= SLOTS
    assert {ti["hostname"] for ti in generate} == {"worker-1.localhost", "worker-2.localhost"}
