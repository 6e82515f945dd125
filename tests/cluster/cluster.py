"""A client of the cluster ``scripts/cluster.py up`` started: its REST API, emulator, S3 and processes.

Read from the ``cluster.json`` the script writes; every wait is bounded and fails with what it saw.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

RUN_TIMEOUT = 180


@dataclass
class Cluster:
    """The running cluster in ``folder``."""

    folder: Path
    state: dict = field(init=False)
    session: requests.Session = field(init=False)

    def __post_init__(self) -> None:
        self.reload()
        self.session = requests.Session()
        ui = self.state["ui"]
        answer = requests.post(
            f"{self.url}/auth/token",
            json={"username": ui["username"], "password": ui["password"]},
            timeout=30,
        )
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def reload(self) -> None:
        """Read ``cluster.json`` again (pids change when a test restarts a process)."""
        self.state = json.loads((self.folder / "cluster.json").read_text())

    @property
    def url(self) -> str:
        return self.state["ui"]["url"]

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.state['ports']['moto']}"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API (``/api/v2`` + ``path``) as the admin; return the JSON answer."""
        response = self.session.request(method, f"{self.url}/api/v2{path}", timeout=30, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text[:1000]}"
        return response.json()

    def get(self, path: str) -> requests.Response:
        """GET a path of the API server (e.g. the plugin's ``/azerion/...``) as the admin."""
        return self.session.get(f"{self.url}{path}", timeout=60)

    # -- DAG runs --------------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the DAG processor has stored ``dag_id``; then unpause it."""
        deadline = time.monotonic() + timeout
        while not self.api("GET", f"/dags?dag_id_pattern={dag_id}")["total_entries"]:
            if time.monotonic() > deadline:
                pytest.fail(f"{dag_id} not parsed within {timeout} s:\n{self.log_tail('dag-processor')}")
            time.sleep(1)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict) -> str:
        """Trigger ``dag_id`` now through the REST API; return the run id."""
        self.wait_for_dag(dag_id)
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})[
            "dag_run_id"
        ]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        """Wait, bounded, until the run is over; return its state."""
        deadline = time.monotonic() + timeout
        while (state := self.run_state(dag_id, run_id)) not in ("success", "failed"):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{dag_id} {run_id} still {state} after {timeout} s: "
                    f"{self.task_instances(dag_id, run_id)}\n{self.log_tail('scheduler')}"
                )
            time.sleep(1)
        return state

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """The run's task instances (state, hostname, try_number...), by task id and map index."""
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=1000")
        return sorted(answer["task_instances"], key=lambda ti: (ti["task_id"], ti["map_index"]))

    def pool(self, name: str, slots: int) -> None:
        """Create Airflow pool ``name`` with ``slots`` slots, or resize it."""
        response = self.session.post(
            f"{self.url}/api/v2/pools", json={"name": name, "slots": slots}, timeout=30
        )
        if response.status_code == 409:
            self.api(
                "PATCH", f"/pools/{name}", json={"name": name, "slots": slots, "include_deferred": False}
            )
        else:
            assert response.ok, response.text

    # -- the emulator ----------------------------------------------------------------------------

    def emulator(self, **settings: Any) -> dict:
        """Configure the emulator (``latency``, ``fault_rate``, ``reset``...); return its counters."""
        port = self.state["ports"]["emulator_control"]
        return requests.post(f"http://127.0.0.1:{port}/configure", json=settings, timeout=10).json()

    def emulator_stats(self) -> dict:
        """What the emulator served since its last reset (see scripts/cluster_emulator.py)."""
        port = self.state["ports"]["emulator_control"]
        return requests.get(f"http://127.0.0.1:{port}/stats", timeout=10).json()

    # -- S3 and logs -----------------------------------------------------------------------------

    def s3(self) -> Any:
        """A boto3 client of the cluster's moto S3 server."""
        from benchmarks.s3_latency import s3_client

        return s3_client(self.moto_url)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.folder / "logs" / f"{name}.log"
        return f"--- {path}:\n" + (path.read_text(errors="replace")[-chars:] if path.exists() else "(none)")


def s3_objects(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``, by key."""
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def s3_put_counts(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    """How many times each key under ``prefix`` was written (the bucket keeps every version)."""
    counts: dict[str, int] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts
