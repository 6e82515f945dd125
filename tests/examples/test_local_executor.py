"""``azerion_mapped_prompts`` through a real executor: LocalExecutor worker processes.

``dag.test()`` runs tasks inside the test process; a deployment runs each task in a worker that
talks to the API server's Execution API. This test builds that deployment in miniature, with its
own ``AIRFLOW_HOME`` and SQLite DB, all on loopback:

1. ``airflow db migrate``;
2. ``airflow api-server --apps execution`` on a free port (workers report task state, XComs and
   read connections through it);
3. ``airflow dags test azerion_mapped_prompts --use-executor`` with ``[core] executor =
   LocalExecutor`` and ``[core] execution_api_server_url`` pointing at that server. The command
   queues every task on the executor, whose forked workers each supervise a task process.

Airflow 3 accepts LocalExecutor with SQLite (Airflow 2 refused it and only allowed the
SequentialExecutor, which Airflow 3 removed). Proof that tasks ran in separate processes: the
``pid`` each task instance recorded in the DB (the worker-side task process), distinct per mapped
task instance and from the ``airflow dags test`` process. The emulator runs in this test process,
so every image request crossed a process boundary over HTTP.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.examples.conftest import EXAMPLE_DAGS, SECRET_KEY, connection_json
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
from tests.statsd import StatsdListener

DAG_ID = "azerion_mapped_prompts"
SUBJECTS = ["a red fox", "a blue whale", "a green owl"]
RUN_TIMEOUT = 240

pytestmark = pytest.mark.azerion_emulator(max_side=64)


def airflow_env(
    home: Path, api_port: int, emulator_url: str, output_base: Path, statsd_port: int
) -> dict[str, str]:
    """A deployment's environment: nothing inherited from the test harness's own Airflow set-up."""
    return local_executor_env(
        home,
        api_port,
        EXAMPLE_DAGS,
        AIRFLOW_CONN_AZERION_DEFAULT=connection_json(emulator_url),
        AIRFLOW_VAR_AZERION_OUTPUT_BASE=output_base.as_uri(),
        AIRFLOW__METRICS__STATSD_ON="True",
        AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
        AIRFLOW__METRICS__STATSD_PORT=str(statsd_port),
        AIRFLOW__METRICS__STATSD_PREFIX="airflow",
    )


def task_instances(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT task_id, map_index, state, pid, hostname, try_number FROM task_instance "
            "WHERE dag_id = ? ORDER BY task_id, map_index",
            (DAG_ID,),
        )
        return [dict(row) for row in rows]


# The steps' own deadlines fire first, with the logs attached; the suite's 300 s would cut them short.
@pytest.mark.timeout(MIGRATE_TIMEOUT + API_START_TIMEOUT + RUN_TIMEOUT + 60)
def test_mapped_prompts_run_in_local_executor_worker_processes(emulator, tmp_path):
    home, output_base = tmp_path / "airflow", tmp_path / "images"
    home.mkdir()
    output_base.mkdir()
    api_port = free_port()
    statsd = StatsdListener()
    env = airflow_env(home, api_port, emulator.base_url, output_base, statsd.port)
    api = run = None
    try:
        statsd.start()
        emulator.retry_after = 0.01  # the 429's advised wait: short enough for the hook to resend
        emulator.faults.script(["429", "503"])  # answered by the hook's retries: counted, not failed
        migrate(env)
        api = start_api_server(env, api_port, tmp_path / "api-server.log")
        run_log = tmp_path / "dags-test.log"
        conf = json.dumps({"subjects": SUBJECTS})
        # The executor's workers are in the command's session, so stop() reaches them too.
        run = start(["dags", "test", DAG_ID, "--use-executor", "--conf", conf], env, run_log)
        finished, stopped = wait_for_run(run, home / "airflow.db", DAG_ID, run_log, RUN_TIMEOUT)
        log = run_log.read_text()
        assert finished == "success", log[-3000:]
        # A clean exit is expected. A process still shutting its executor down 30 s after the run
        # finished (seen once: a hang after "Shutting down LocalExecutor") is stopped instead: the
        # DB below, not the exit code, is what proves the tasks ran.
        assert stopped or run.returncode == 0, log[-3000:]
    finally:
        stop(run)
        stop(api)
        statsd.close()

    assert "LocalExecutor" in log
    tis = task_instances(home / "airflow.db")
    assert [(ti["task_id"], ti["map_index"], ti["state"]) for ti in tis] == [
        ("build_prompts", -1, "success"),
        *[("generate", i, "success") for i in range(len(SUBJECTS))],
        ("write_manifest", -1, "success"),
    ]
    assert {ti["try_number"] for ti in tis} == {1}, "the hook's retries absorbed the 429 and the 503"
    pids = [ti["pid"] for ti in tis]
    assert all(isinstance(pid, int) and pid > 0 for pid in pids), tis
    assert len(set(pids)) == len(tis), f"each task instance ran in its own process: {tis}"
    assert not {run.pid, api.pid, os.getpid()} & set(pids), "no task ran in the launching processes"

    (run_folder,) = (output_base / DAG_ID).iterdir()
    manifest = [json.loads(line) for line in (run_folder / "manifest.jsonl").read_text().splitlines()]
    assert [entry["prompt"] for entry in manifest] == [f"a watercolour illustration of {s}" for s in SUBJECTS]
    for map_index in range(len(SUBJECTS)):
        image = run_folder / f"generate-{map_index}" / "0000-0.jpg"
        assert image.read_bytes().startswith(b"\xff\xd8\xff")
        assert manifest[map_index]["uri"] == image.as_uri()
    assert len(emulator.requests_to("/images/generations")) == len(SUBJECTS) + 2
    assert SECRET_KEY not in log

    # The azerion.* metrics, sent by each task's own process through Airflow's StatsD backend,
    # agree with what the emulator served and what storage holds.
    sidecars = [json.loads(path.read_text()) for path in sorted(run_folder.glob("generate-*/0000-0.json"))]
    expected = {
        "airflow.azerion.generations": len(SUBJECTS),
        "airflow.azerion.images": len(SUBJECTS),
        "airflow.azerion.bytes": sum(sidecar["bytes"] for sidecar in sidecars),
        "airflow.azerion.tokens": sum(sidecar["usage"]["total_tokens"] for sidecar in sidecars),
        "airflow.azerion.rate_limited": 1,
        "airflow.azerion.retries": 2,
    }
    # A counter that would add 0 sends nothing (the emulator's models may report no tokens).
    assert statsd.counters("airflow.azerion.") == {name: n for name, n in expected.items() if n}
    assert len(
        statsd.timings("airflow.azerion.generation_seconds")["airflow.azerion.generation_seconds"]
    ) == len(SUBJECTS)
