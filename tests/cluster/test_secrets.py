"""No file the cluster wrote (its processes' logs, Airflow's task logs, the databases) holds the API key,
and no process of it has the key on its command line (which ``ps`` shows every user) or, but the
emulator, in its environment: workers get the connection through the Execution API.

Runs last, over everything the other tests made the cluster do.
"""

from __future__ import annotations

from pathlib import Path

from tests.cluster.conftest import API_KEY


def test_no_file_under_the_cluster_folder_holds_the_api_key(cluster):
    key = API_KEY.encode()
    files = [path for path in cluster.folder.rglob("*") if path.is_file()]
    task_logs = [path for path in files if "dag_id=" in str(path)]

    holding = [str(path) for path in files if key in path.read_bytes()]

    assert len(task_logs) >= 10, "the other tests' task logs are part of the scan"
    assert holding == []


def _descendants(roots: set[int]) -> set[int]:
    """The pids in ``roots`` and every process below them (workers fork their task processes)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses: the parent pid follows the last ')'.
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    found = {pid for pid in roots if pid in parents}
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended while we looked
        return b""


def test_no_process_has_the_key_on_its_command_line_or_only_the_emulator_in_its_environment(cluster):
    cluster.reload()
    pids = cluster.state["pids"]
    key = API_KEY.encode()
    processes = _descendants({int(pid) for pid in pids.values()})
    emulator = _descendants({int(pids["emulator"])})

    on_command_line = [pid for pid in processes if key in _read(Path(f"/proc/{pid}/cmdline"))]
    in_environment = [pid for pid in processes - emulator if key in _read(Path(f"/proc/{pid}/environ"))]

    assert len(processes) >= 8, "the cluster's processes are all looked at"
    assert key in _read(Path(f"/proc/{pids['emulator']}/environ")), "the scan sees a key where one is"
    assert on_command_line == []
    assert in_environment == []
