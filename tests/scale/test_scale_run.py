"""The scale run: 2 000 prompts, 20 mapped tasks of 100, LocalExecutor, S3, 10 % injected faults.

One DAG run of ``azerion_scale_run`` (``tests/dags/azerion_scale.py``) in a deployment in
miniature, as in ``tests/examples/test_local_executor.py``: its own ``AIRFLOW_HOME`` and SQLite
DB, ``airflow api-server`` for the Execution API, and ``airflow dags test --use-executor`` with
the LocalExecutor, whose worker processes run the tasks. Images go to moto's S3 server through
a proxy that counts every storage request. The emulator fails 10 % of generation requests:
mostly statuses the hook retries (500, 502, 503, 504, 429), and dropped connections, which the
hook must not resend (the generation may have been billed), so they fail the try and the task's
retries resume it.

Checked: every image stored exactly once (one PUT per image key), every sha256 matching its
sidecar, every manifest complete (one line per image, each its sidecar, in order), every XCom
within 64 KiB, and no prompt generated successfully twice. The wall time and storage requests
per image are printed (``pytest -s``) and recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import collections
import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from benchmarks.s3_latency import aws_connection, moto_s3, s3_client
from tests.conftest import TESTS_DIR
from tests.processes import (
    API_START_TIMEOUT,
    MIGRATE_TIMEOUT,
    free_port,
    local_executor_env,
    migrate,
    start,
    start_api_server,
    stop,
    wait_for_run,
)

DAG_ID = "azerion_scale_run"
PROMPTS, CHUNK = 2000, 100
TASKS = PROMPTS // CHUNK
BUCKET = "azerion-scale-run"
SEED = 20251124
#: One fault kind in ten is a dropped connection (about 1 % of requests): a failed try each.
FAULT_KINDS = ("503", "500", "502", "504", "429", "503", "500", "502", "504", "drop")
RUN_TIMEOUT = 420
XCOM_LIMIT = 64 * 1024

pytestmark = pytest.mark.azerion_emulator(max_side=16)


def deployment_env(home: Path, api_port: int, emulator, s3_endpoint: str) -> dict[str, str]:
    """The environment of every Airflow process of the run: nothing from the test harness's Airflow."""
    azerion = {
        "conn_type": "azerion",
        "host": emulator.base_url,
        "password": emulator.api_key,
        "extra": {"backoff_factor": 0.01, "max_retry_wait": 0.05, "max_attempts": 5},
    }
    return local_executor_env(
        home,
        api_port,
        TESTS_DIR / "dags",
        AIRFLOW_CONN_AZERION_DEFAULT=json.dumps(azerion),
        AIRFLOW_CONN_AWS_SCALE=json.dumps(aws_connection(s3_endpoint)),
    )


def query(db: Path, sql: str, *args) -> list[tuple]:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []


@pytest.mark.timeout(MIGRATE_TIMEOUT + API_START_TIMEOUT + RUN_TIMEOUT + 120)
def test_two_thousand_prompts_under_faults_are_each_stored_once(azerion_emulator, tmp_path):
    emulator = azerion_emulator
    emulator.retry_after = 0.01
    home = tmp_path / "airflow"
    home.mkdir()
    api_port = free_port()
    api = run = None
    with moto_s3() as (moto_url, proxy):
        client = s3_client(moto_url)
        client.create_bucket(Bucket=BUCKET)
        env = deployment_env(home, api_port, emulator, proxy.url)
        try:
            migrate(env)
            api = start_api_server(env, api_port, tmp_path / "api-server.log")
            emulator.faults.set_rate(0.1, kinds=FAULT_KINDS, seed=SEED)
            proxy.reset()
            conf = {
                "prompts": PROMPTS,
                "chunk": CHUNK,
                "output_path": f"s3://{BUCKET}/scale/",
                "aws_conn_id": "aws_scale",
            }
            run_log = tmp_path / "dags-test.log"
            started = time.monotonic()
            run = start(["dags", "test", DAG_ID, "--use-executor", "--conf", json.dumps(conf)], env, run_log)
            state, _ = wait_for_run(run, home / "airflow.db", DAG_ID, run_log, RUN_TIMEOUT)
            wall = time.monotonic() - started
        finally:
            stop(run)
            stop(api)
        storage_requests = proxy.requests
        objects = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="scale/"):
            objects.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        contents = {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in objects}

    db = home / "airflow.db"
    assert state == "success", run_log.read_text()[-3000:]
    tries = dict(query(db, "SELECT map_index, try_number FROM task_instance WHERE task_id = 'generate'"))
    states = query(db, "SELECT DISTINCT state FROM task_instance WHERE dag_id = ?", DAG_ID)
    assert sorted(tries) == list(range(TASKS))
    assert states == [("success",)]
    assert any(t > 1 for t in tries.values()), "dropped connections failed some tries, which resumed"

    # Every image stored exactly once: one PUT per image key, none for any other image.
    puts = collections.Counter(r.key for r in storage_requests if r.kind == "PUT")
    images = {key for key in objects if key.endswith(".jpg")}
    assert len(images) == PROMPTS
    assert {puts[key] for key in images} == {1}
    assert {puts[key] for key in objects if key.endswith("-0.json")} == {1}

    # Every sha256 matches its sidecar; every manifest is complete and agrees with the sidecars.
    folders = sorted({key.rsplit("/", 1)[0] for key in objects})
    assert len(folders) == TASKS
    seen_prompts = []
    for folder in folders:
        lines = [json.loads(line) for line in contents[f"{folder}/manifest.jsonl"].splitlines()]
        assert len(lines) == CHUNK
        for position, entry in enumerate(lines):
            assert (entry["prompt_index"], entry["image_index"]) == (position, 0)
            assert entry == json.loads(contents[f"{folder}/{position:04d}-0.json"])
            image = contents[f"{folder}/{entry['image']}"]
            assert hashlib.sha256(image).hexdigest() == entry["sha256"]
            assert len(image) == entry["bytes"]
            seen_prompts.append(entry["prompt"])
    assert sorted(seen_prompts) == [f"s{i:04d}" for i in range(PROMPTS)]

    # Every XCom within 64 KiB, the generate tasks' with all their image entries.
    xcoms = query(
        db, "SELECT task_id, map_index, length(CAST(value AS BLOB)) FROM xcom WHERE dag_id = ?", DAG_ID
    )
    assert len(xcoms) == TASKS + 1
    assert max(size for _, _, size in xcoms) <= XCOM_LIMIT
    values = query(db, "SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'generate'", DAG_ID)
    results = [json.loads(value) for (value,) in values]
    assert all(result["count"] == CHUNK and len(result["images"]) == CHUNK for result in results)

    # No prompt was generated successfully twice: only faults were resent.
    records = emulator.requests_to("/images/generations")
    clean = collections.Counter(r.prompt for r in records if r.status == 200 and not r.fault)
    assert set(clean.values()) == {1}
    assert len(clean) == PROMPTS
    faults = collections.Counter(r.fault for r in records if r.fault)
    assert sum(faults.values()) >= 0.07 * len(records)

    kinds = collections.Counter(r.kind for r in storage_requests)
    print(
        f"\nscale run: {PROMPTS} prompts in {TASKS} mapped tasks, {wall:.1f} s wall (dags test start to "
        f"DAG run end); {len(records)} generation requests, faults {dict(faults)}; task tries "
        f"{sorted(tries.values())}; storage requests {dict(kinds)} = "
        f"{len(storage_requests) / PROMPTS:.3f} per image; largest XCom "
        f"{max(size for _, _, size in xcoms)} bytes"
    )
