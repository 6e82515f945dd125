"""Airflow processes the end-to-end tests start for real: ``db migrate``, ``api-server``, ``dags test``.

Every process runs in its own session so that :func:`stop` reaches what it forked (uvicorn's
workers, LocalExecutor's workers), and every wait is bounded: a step that does not finish in time
fails the test with the tail of its log.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
import requests

AIRFLOW = [sys.executable, "-m", "airflow"]
MIGRATE_TIMEOUT = 180
API_START_TIMEOUT = 120


def local_executor_env(home: Path, api_port: int, dags_folder: Path, **variables: str) -> dict[str, str]:
    """The environment of a LocalExecutor deployment's processes: nothing from the test harness's Airflow.

    :param home: ``AIRFLOW_HOME``, with the SQLite metadata DB in it.
    :param api_port: where the ``api-server`` (the Execution API) listens on 127.0.0.1.
    :param dags_folder: the DAG bundle (``dag.test(use_executor=True)`` sends "dags-folder" workloads).
    :param variables: further variables, e.g. ``AIRFLOW_CONN_*`` connections.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("AZERION_API_KEY", None)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # LocalExecutor forks all its workers up front: keep the count small on CI machines.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            # The API server signs the workers' tokens; both sides must share the secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            **variables,
        }
    )
    return env


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen | None) -> None:
    """Stop a process started in its own session, with everything it forked."""
    if process is None or process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def migrate(env: dict[str, str]) -> None:
    """``airflow db migrate`` for the deployment ``env`` describes."""
    done = subprocess.run(
        [*AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=MIGRATE_TIMEOUT
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``airflow <args>`` in its own session, its output going to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*AIRFLOW, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_api_server(
    env: dict[str, str],
    port: int,
    log: Path,
    apps: str | None = "execution",
    health: str | None = None,
    workers: int = 1,
) -> subprocess.Popen:
    """Start ``airflow api-server`` on 127.0.0.1:``port`` and wait until it answers.

    :param apps: the ``--apps`` to serve (``None``: Airflow's default, the UI and both APIs).
    :param health: the path to poll; defaults to the Execution API's health route.
    :param workers: uvicorn worker processes.
    """
    args = ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if apps:
        args += ["--apps", apps]
    api = start(args, env, log)
    try:
        wait_until_healthy(api, f"http://127.0.0.1:{port}{health or '/execution/health'}", log)
    except BaseException:
        stop(api)
        raise
    return api


def wait_until_healthy(
    api: subprocess.Popen, url: str, log: Path, timeout: float = API_START_TIMEOUT
) -> None:
    """Wait, bounded, until ``url`` answers 200; fail with the server's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.poll() is not None:
            pytest.fail(f"airflow api-server exited with {api.returncode}:\n{log.read_text()[-3000:]}")
        with suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"airflow api-server not healthy within {timeout} s:\n{log.read_text()[-3000:]}")


def dag_run_state(db: Path, dag_id: str) -> str | None:
    """The state of ``dag_id``'s run in a SQLite metadata DB, or None before it exists."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("SELECT state FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def wait_for_run(
    run: subprocess.Popen, db: Path, dag_id: str, log: Path, timeout: float, exit_grace: float = 30.0
) -> tuple[str | None, bool]:
    """Wait, bounded, until ``airflow dags test`` exits or its DAG run is over.

    The DB is the witness: once the run is finished the process gets ``exit_grace`` seconds to
    exit, after which it is stopped rather than failing the test on a shutdown that hangs.

    :return: the DAG run's state, and whether the process had to be stopped.
    """
    deadline = time.monotonic() + timeout
    finished_at = None
    while run.poll() is None:
        state = dag_run_state(db, dag_id)
        if state in ("success", "failed") and finished_at is None:
            finished_at = time.monotonic()
        if finished_at is not None and time.monotonic() - finished_at > exit_grace:
            stop(run)
            return dag_run_state(db, dag_id), True
        if time.monotonic() > deadline:
            pytest.fail(f"airflow dags test took over {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return dag_run_state(db, dag_id), False
