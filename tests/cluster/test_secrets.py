"""No file the cluster wrote (its processes' logs, Airflow's task logs, the databases) holds the API key.

Runs last, over everything the other tests made the cluster do.
"""

from __future__ import annotations

from tests.cluster.conftest import API_KEY


def test_no_file_under_the_cluster_folder_holds_the_api_key(cluster):
    key = API_KEY.encode()
    files = [path for path in cluster.folder.rglob("*") if path.is_file()]
    task_logs = [path for path in files if "dag_id=" in str(path)]

    holding = [str(path) for path in files if key in path.read_bytes()]

    assert len(task_logs) >= 10, "the other tests' task logs are part of the scan"
    assert holding == []
