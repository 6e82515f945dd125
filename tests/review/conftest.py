"""A real Airflow deployment for the review tests: scheduler, dag-processor, api-server (and triggerer).

Human-in-the-loop needs what ``dag.test()`` lacks: an API server where a person (or a bot through
``PATCH .../hitlDetails``) answers, and a scheduler that resumes the task and applies timeouts.
So the tests run one deployment per session, all on loopback, in its own ``AIRFLOW_HOME`` with a
SQLite DB: ``api-server`` (UI, REST API, Execution API; base path ``/airflow``), ``scheduler``
with the LocalExecutor, ``dag-processor`` and, on Airflow 3.2 (where a review defers to a
trigger), ``triggerer``. The emulator runs in this process; runs are triggered and answered
through the REST API as an admin of the simple auth manager.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.conftest import REPO_ROOT, emulator_connection_json
from tests.processes import free_port, local_executor_env, migrate, start, start_api_server, stop

SECRET_KEY = "sk-azerion-REVIEW-SECRET-a11ce"
BASE_PATH = "/airflow"
USERNAME = "reviewer"
REVIEW_DAG = "azerion_review_publish"
DAG_FILES = [REPO_ROOT / "example_dags" / "azerion_review_publish.py", Path(__file__).parent / "dags"]
#: Bounds of the waits (the scheduler and the dag-processor poll every few seconds).
PARSE_TIMEOUT = 120
STATE_TIMEOUT = 180


def airflow_3_3_or_later() -> bool:
    from airflow import __version__
    from packaging.version import Version

    return Version(__version__).release >= (3, 3)


@dataclass
class Deployment:
    """The running deployment and a REST client of its API server."""

    home: Path
    url: str
    password: str
    output_base: Path
    emulator: Any
    logs: list[Path]
    _token: str = ""

    @property
    def http(self):
        """Plain HTTP, for routes outside ``/api/v2`` (the Images tab's)."""
        return requests

    # -- REST ------------------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT of :data:`USERNAME` from the simple auth manager's token route."""
        if not self._token:
            reply = requests.post(
                f"{self.url}/auth/token", json={"username": USERNAME, "password": self.password}, timeout=30
            )
            assert reply.status_code in (200, 201), reply.text
            self._token = reply.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call ``/api/v2<path>`` with the reviewer's token."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return requests.request(method, f"{self.url}/api/v2{path}", headers=headers, timeout=30, **kwargs)

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        """Unpause ``dag_id`` (once parsed) and trigger a run with ``conf``; return its run id."""
        deadline = time.monotonic() + PARSE_TIMEOUT
        while self.api("GET", f"/dags/{dag_id}").status_code != 200:
            assert time.monotonic() < deadline, f"{dag_id} not parsed in time:\n{self.tail()}"
            time.sleep(1)
        assert self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).status_code == 200
        reply = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        assert reply.status_code == 200, reply.text
        return reply.json()["dag_run_id"]

    def ti_path(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        return path + (f"/{map_index}" if map_index >= 0 else "")

    def ti_state(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
        reply = self.api("GET", self.ti_path(dag_id, run_id, task_id, map_index))
        return reply.json().get("state") if reply.status_code == 200 else None

    def wait_for_ti(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], map_index: int = -1
    ) -> str:
        """Wait, bounded, until the task instance is in one of ``states``; return it."""
        deadline = time.monotonic() + STATE_TIMEOUT
        while (state := self.ti_state(dag_id, run_id, task_id, map_index)) not in states:
            assert state not in {"failed", "upstream_failed"} or state in states, (
                f"{task_id}[{map_index}] is {state}:\n{self.tail()}"
            )
            assert time.monotonic() < deadline, f"{task_id}[{map_index}] still {state}:\n{self.tail()}"
            time.sleep(0.5)
        return state

    def wait_for_review(self, dag_id: str, run_id: str, task_id: str = "review", map_index: int = -1) -> dict:
        """Wait until the review asks (``awaiting_input`` on 3.3, ``deferred`` on 3.2); its HITL detail."""
        state = self.wait_for_ti(dag_id, run_id, task_id, {"awaiting_input", "deferred"}, map_index)
        reply = self.api("GET", self.ti_path(dag_id, run_id, task_id) + f"/{map_index}/hitlDetails")
        assert reply.status_code == 200, reply.text
        detail = reply.json()
        self._wait_until_scheduler_saw_park(
            f"task_id={task_id}, run_id={run_id}, map_index={map_index},", state
        )
        return detail

    def _wait_until_scheduler_saw_park(self, marker: str, state: str) -> None:
        """Wait until the scheduler has processed the executor's event of the try that asked.

        Airflow 3.3.2 races here: an answer that re-queues the task before the scheduler has
        handled the asking try's exit event gets the task marked failed ("finished with state
        success, but the task instance's state attribute is queued"). A person never answers
        that fast; a test (or a bot) must not either. The scheduler's log is the only witness.
        """
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in self.logs[1].read_text(errors="replace").splitlines():
                if "TaskInstance Finished" in line and marker in line and f"state={state}" in line:
                    return
            time.sleep(0.3)
        pytest.fail(f"the scheduler never handled the parked try of {marker}:\n{self.tail()}")

    def answer(
        self, dag_id: str, run_id: str, chosen: list[str], comment: str | None = None, **where: Any
    ) -> requests.Response:
        """Answer a review through ``PATCH .../{map_index}/hitlDetails``, as a bot would."""
        task_id = where.get("task_id", "review")
        map_index = where.get("map_index", -1)
        path = self.ti_path(dag_id, run_id, task_id) + f"/{map_index}/hitlDetails"
        return self.api("PATCH", path, json={"chosen_options": chosen, "params_input": {"comment": comment}})

    def wait_for_run(self, dag_id: str, run_id: str) -> str:
        """Wait, bounded, until the run is over; return its state."""
        deadline = time.monotonic() + STATE_TIMEOUT
        while True:
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}").json()["state"]
            if state in ("success", "failed"):
                return state
            assert time.monotonic() < deadline, f"run {run_id} still {state}:\n{self.tail()}"
            time.sleep(0.5)

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = self.ti_path(dag_id, run_id, task_id) + "/xcomEntries/return_value"
        reply = self.api("GET", path, params={"map_index": map_index, "deserialize": True})
        assert reply.status_code == 200, reply.text
        value = reply.json()["value"]
        return json.loads(value) if isinstance(value, str) else value

    def tail(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}" for log in self.logs)


@pytest.fixture(scope="session")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    """The deployment, started once per session and stopped with everything it forked."""
    from airflow_provider_azerion.emulator.server import EmulatorServer

    work = tmp_path_factory.mktemp("review-deployment")
    dags = work / "dags"
    dags.mkdir()
    for source in DAG_FILES:
        for file in [source] if source.is_file() else sorted(source.glob("*.py")):
            shutil.copy(file, dags / file.name)
    output_base = work / "images"
    output_base.mkdir()
    api_port = free_port()
    url = f"http://127.0.0.1:{api_port}{BASE_PATH}"
    password = secrets.token_urlsafe(12)
    (work / "passwords.json").write_text(json.dumps({USERNAME: password}))
    with EmulatorServer(host="127.0.0.1", port=0, api_key=SECRET_KEY, max_side=128) as emulator:
        env = local_executor_env(
            work / "home",
            api_port,
            dags,
            AIRFLOW_CONN_AZERION_DEFAULT=emulator_connection_json(emulator.base_url, SECRET_KEY),
            AIRFLOW_VAR_AZERION_OUTPUT_BASE=output_base.as_uri(),
            AIRFLOW__API__BASE_URL=url + "/",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=url + "/execution/",
            AIRFLOW__CORE__AUTH_MANAGER=(
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USERNAME}:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(work / "passwords.json"),
            AIRFLOW__AZERION__THUMBNAIL_CACHE_DIR=str(work / "thumbnails"),
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="600",
            AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="1",
        )
        (work / "home").mkdir()
        migrate(env)
        logs = [work / f"{name}.log" for name in ("api-server", "scheduler", "dag-processor", "triggerer")]
        processes = []
        try:
            processes.append(
                start_api_server(
                    env, api_port, logs[0], apps=None, health=f"{BASE_PATH}/api/v2/monitor/health"
                )
            )
            processes.append(start(["scheduler"], env, logs[1]))
            processes.append(start(["dag-processor"], env, logs[2]))
            if not airflow_3_3_or_later():
                processes.append(start(["triggerer"], env, logs[3]))
            yield Deployment(work / "home", url, password, output_base, emulator, logs[: len(processes)])
        finally:
            for process in reversed(processes):
                stop(process)


def task_folder(output_base: Path, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Path:
    """The folder of a generation task instance (as the package lays it out)."""
    from airflow_provider_azerion.layout import task_segments

    return output_base.joinpath(*task_segments(dag_id, run_id, task_id, map_index))
