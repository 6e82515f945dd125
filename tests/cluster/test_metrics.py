"""The azerion.* metrics of a run on the cluster, summed over the StatsD lines of every worker's tasks.

They must agree with what the emulator served and what S3 holds. The listener and the counting are
those of ``tests/examples/test_local_executor.py`` (``tests/statsd.py``).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.cluster.cluster import s3_objects
from tests.cluster.conftest import BUCKET

DAG_ID = "azerion_cluster_pool"
TASKS, PROMPTS = 4, 3


def azerion_counters(statsd) -> dict[str, float]:
    return statsd.counters("airflow.azerion.")


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: value - before.get(name, 0) for name, value in after.items() if value - before.get(name, 0)}


@pytest.mark.timeout(600)
def test_the_counters_equal_what_the_emulator_served_and_s3_holds(cluster, statsd):
    cluster.pool("azerion_cluster", slots=8)
    cluster.emulator(reset=True, latency=0.2)
    before = azerion_counters(statsd)

    run_id = cluster.trigger(
        DAG_ID, {"tasks": TASKS, "prompts": PROMPTS, "bucket": BUCKET, "prefix": "metrics"}
    )
    assert cluster.wait_for_run(DAG_ID, run_id) == "success"

    objects = s3_objects(cluster.s3(), BUCKET, f"metrics/{DAG_ID}/")
    sidecars = [json.loads(data) for key, data in objects.items() if key.endswith("-0.json")]
    served = cluster.emulator_stats()
    assert len(sidecars) == TASKS * PROMPTS == served["generation_count"]
    expected = {
        "airflow.azerion.generations": served["generation_count"],
        "airflow.azerion.images": len(sidecars),
        "airflow.azerion.bytes": sum(sidecar["bytes"] for sidecar in sidecars),
        "airflow.azerion.tokens": sum(
            (sidecar.get("usage") or {}).get("total_tokens", 0) for sidecar in sidecars
        ),
    }
    expected = {name: n for name, n in expected.items() if n}  # a counter adding 0 sends nothing
    deadline = time.monotonic() + 15  # UDP datagrams of the last task may still be on their way
    while (got := delta(azerion_counters(statsd), before)) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert got == expected
