"""No file the cluster wrote (its processes' logs, Airflow's task logs, the databases) holds the API key,
and no process of it has the key on its command line (which ``ps`` shows every user) or, but the
emulator, in its environment: workers get the connection through the Execution API.

Runs last, over everything the other tests made the cluster do.
"""

from __future__ import annotations

import psutil

from tests.cluster.conftest import API_KEY


def test_no_file_under_the_cluster_folder_holds_the_api_key(cluster):
    key = API_KEY.encode()
    files = [path for path in cluster.folder.rglob("*") if path.is_file()]
    task_logs = [path for path in files if "dag_id=" in str(path)]

    holding = [str(path) for path in files if key in path.read_bytes()]

    assert len(task_logs) >= 10, "the other tests' task logs are part of the scan"
    assert holding == []


def _family(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and every process below it (workers fork their task processes)."""
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:  # e.g. the worker test_worker_kill killed
        return []


def _seen(process: psutil.Process) -> tuple[str, str]:
    """The process's command line and environment, as text ("" once it has ended)."""
    try:
        return "\0".join(process.cmdline()), "\0".join(process.environ().values())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):  # it ended while we looked
        return "", ""


def test_no_process_has_the_key_on_its_command_line_or_only_the_emulator_in_its_environment(cluster):
    cluster.reload()
    pids = cluster.state["pids"]
    processes = [process for pid in pids.values() for process in _family(int(pid))]
    emulator = {process.pid for process in _family(int(pids["emulator"]))}

    seen = {process.pid: _seen(process) for process in processes}
    on_command_line = [pid for pid, (cmdline, _) in seen.items() if API_KEY in cmdline]
    in_environment = [pid for pid, (_, environ) in seen.items() if pid not in emulator and API_KEY in environ]

    assert len(processes) >= 8, "the cluster's processes are all looked at"
    assert API_KEY in seen[int(pids["emulator"])][1], "the scan sees a key where one is"
    assert on_command_line == []
    assert in_environment == []
