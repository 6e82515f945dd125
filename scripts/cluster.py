"""``make cluster``: a production-shaped Airflow on loopback, for tests, benchmarks and a look at the UI.

Usage::

    make cluster up                      # or: make cluster, make cluster-up
    make cluster status                  # or: make cluster-status
    make cluster down                    # or: make cluster-down
    make cluster up CLUSTER_ARGS="--api-port 8080 --dir /tmp/my-cluster"

which run ``.venv/bin/python scripts/cluster.py up|status|down [options]`` (``--help``: all of
them: ``--dir``, ``--api-port``, ``--statsd-port``, ``--extra-dags``, ``--worker-concurrency``,
``--serve-logs``, ``--timeout``).

``up`` starts, all on 127.0.0.1 and with every file in one folder (``.cluster/`` by default):
PostgreSQL 15 (the metadata DB, run as the ``postgres`` user), Redis (the Celery broker), moto's
S3 server, the Azerion emulator, and Airflow's ``api-server``, ``scheduler``, ``dag-processor``,
``triggerer`` and two ``celery worker`` processes (CeleryExecutor), each worker with its own
``--celery-hostname`` and ``[logging] worker_log_server_port``. Their log servers, which Airflow
binds on every interface, start only with ``--serve-logs``: the processes share the folder's disk.
Connections ``azerion_default`` (the emulator) and ``aws_default`` (moto), the Variable
``azerion_output_base`` (``s3://`` on moto) and the bucket are stored in the metadata DB. It ends
by printing the UI's URL, its login and the time it took. Ports are free ones, recorded with the
pids in ``cluster.json`` in the folder, which the tests (``tests/cluster``), the scale run
(``scripts/cluster_scale.py``) and ``status`` read. ``up`` on a running cluster says so; on a
stopped one it starts afresh. ``down`` stops every process ``up`` started, by process group,
PostgreSQL last; the logs stay.

The emulator's API key is ``$AZERION_CLUSTER_API_KEY``, else a random one; it is never printed or
written to the folder. Missing Debian packages are installed with apt when run as root, else the
command says which apt command to run. Standard library only at import; Airflow runs from
``sys.executable``'s environment.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cluster_airflow import AIRFLOW, REPO, airflow_env, components, run, seed, worker_env
from cluster_services import (
    ClusterError,
    alive,
    as_postgres,
    ensure_packages,
    free_port,
    http_json,
    http_ok,
    keyless_environ,
    start,
    start_postgres,
    start_redis,
    stop_group,
    stop_groups,
    stop_postgres,
    wait_for,
)

STATE = "cluster.json"


def read_state(folder: Path) -> dict | None:
    """The state ``up`` recorded in ``folder``, or None."""
    try:
        return json.loads((folder / STATE).read_text())
    except (OSError, ValueError):
        return None


def write_state(state: dict) -> None:
    """Record ``state`` (it holds the DB and broker passwords: owner-only)."""
    path = Path(state["folder"]) / STATE
    path.touch(mode=0o600)
    path.write_text(json.dumps(state, indent=2))


def running(state: dict) -> dict[str, bool]:
    """Whether each process ``state`` records is alive."""
    return {name: alive(pid) for name, pid in state.get("pids", {}).items()}


def token(state: dict) -> str:
    """A JWT for the UI's admin, from the simple auth manager's ``/auth/token``."""
    ui = state["ui"]
    answer = http_json(f"{ui['url']}/auth/token", {"username": ui["username"], "password": ui["password"]})
    return answer["access_token"]


def new_state(folder: Path, args: argparse.Namespace) -> dict:
    """Ports, secrets and settings of a new cluster in ``folder``."""
    names = ("postgres", "redis", "moto", "emulator", "emulator_control", "trigger_logs")
    ports: dict = {name: free_port() for name in names}
    ports["api"] = args.api_port or free_port()
    ports["worker_logs"] = [free_port(), free_port()]
    ports["statsd"] = args.statsd_port
    return {
        "folder": str(folder),
        "python": sys.executable,
        "ports": ports,
        "secrets": {
            "db_password": secrets.token_urlsafe(18),
            "redis_password": secrets.token_urlsafe(18),
            "jwt_secret": secrets.token_urlsafe(32),
            "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        },
        "ui": {
            "url": f"http://127.0.0.1:{ports['api']}",
            "username": "admin",
            "password": secrets.token_urlsafe(9),
        },
        "extra_dags": [str(Path(path).resolve()) for path in args.extra_dags],
        "worker_concurrency": args.worker_concurrency,
        "serve_logs": args.serve_logs,
        "pids": {},
    }


def prepare_folder(folder: Path) -> None:
    """Make ``folder`` ready for a new cluster: empty, and reachable by the ``postgres`` user."""
    if folder.exists() and any(folder.iterdir()):
        if read_state(folder) is None:
            raise ClusterError(
                f"{folder} is not empty and holds no {STATE}: choose another --dir or empty it."
            )
        print(f"Removing the stopped cluster in {folder} (its logs and database) to start afresh.")
        shutil.rmtree(folder)
    (folder / "logs").mkdir(parents=True)
    (folder / "airflow").mkdir()
    if os.geteuid() == 0:
        folder.chmod(0o755)
        reach = subprocess.run(as_postgres(["test", "-x", str(folder)]), check=False)
        if reach.returncode != 0:
            raise ClusterError(
                f"The postgres user cannot reach {folder}: a parent folder is private (mode 700?). "
                "Choose a --dir whose parents are world-searchable (chmod o+x), e.g. under /tmp."
            )


def up(folder: Path, args: argparse.Namespace) -> int:
    """Start the cluster in ``folder`` unless it runs already (see the module docstring)."""
    state = read_state(folder)
    if state and any(running(state).values()):
        print(f"The cluster in {folder} is already up (run `status` to see it, `down` to stop it).")
        return 0
    started = time.monotonic()
    apt_seconds = ensure_packages()
    prepare_folder(folder)
    state = new_state(folder, args)
    write_state(state)
    api_key = os.environ.get("AZERION_CLUSTER_API_KEY") or f"cluster-{secrets.token_urlsafe(16)}"
    try:
        start_everything(state, api_key, args.timeout)
    except (ClusterError, OSError) as error:
        print(f"cluster up failed: {error}\nStopping what was started (logs stay in {folder / 'logs'}).")
        down(folder)
        return 1
    state["up_seconds"] = round(time.monotonic() - started, 1)
    state["apt_seconds"] = round(apt_seconds, 1)
    write_state(state)
    ui = state["ui"]
    print(f"\nAirflow (CeleryExecutor, 2 workers) is up in {state['up_seconds']} s", end="")
    print(f" (apt-get took {apt_seconds:.0f} s of it)." if apt_seconds else ".")
    print(f"  Phases: {', '.join(f'{name} {seconds} s' for name, seconds in state['phases'].items())}")
    print(f"  UI:     {ui['url']}   login: {ui['username']} / {ui['password']}")
    print(f"  S3:     http://127.0.0.1:{state['ports']['moto']} (moto; connection aws_default)")
    print(f"  State:  {folder / STATE}; logs in {folder / 'logs'}")
    print(f"  Stop:   {sys.executable} {Path(__file__).relative_to(REPO)} down --dir {folder}")
    return 0


def start_everything(state: dict, api_key: str, timeout: float) -> None:
    """Start every process of ``state``'s cluster, waiting (bounded) until each serves."""
    folder, ports, pids = Path(state["folder"]), state["ports"], state["pids"]
    logs = folder / "logs"
    phases = state["phases"] = {}
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()

    emulator_env = {**keyless_environ(), "AZERION_EMULATOR_API_KEY": api_key}
    pids["moto"] = start(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(ports["moto"])],
        keyless_environ(),
        folder,
    )
    emulator_args = ["--port", str(ports["emulator"]), "--control-port", str(ports["emulator_control"])]
    emulator_script = str(Path(__file__).resolve().parent / "cluster_emulator.py")
    pids["emulator"] = start(
        "emulator", [sys.executable, emulator_script, *emulator_args], emulator_env, folder
    )
    pids["redis"] = start_redis(folder, ports["redis"], state["secrets"]["redis_password"], timeout)
    write_state(state)
    pids["postgres"] = start_postgres(folder, ports["postgres"], state["secrets"]["db_password"], timeout)
    write_state(state)
    phase("postgres_redis")
    env = airflow_env(state)
    (folder / "airflow" / "passwords.json").write_text(json.dumps({"admin": state["ui"]["password"]}))
    state["airflow_env"] = {k: v for k, v in env.items() if k.startswith(("AIRFLOW", "AWS_"))}
    write_state(state)
    run(["db", "migrate"], env, folder, "airflow db migrate", max(timeout, 300))
    phase("db_migrate")
    for name, airflow_args, is_worker in components(state):
        component_env = worker_env(env, state, int(name[-1]) - 1) if is_worker else env
        pids[name] = start(name, [*AIRFLOW, *airflow_args], component_env, folder)
    write_state(state)
    seed(state, env, api_key, timeout)
    wait_for(
        "moto S3",
        lambda: http_ok(f"http://127.0.0.1:{ports['moto']}/"),
        pids["moto"],
        logs / "moto.log",
        timeout,
    )
    control = f"http://127.0.0.1:{ports['emulator_control']}/stats"
    wait_for("the emulator", lambda: http_ok(control), pids["emulator"], logs / "emulator.log", timeout)
    url = state["ui"]["url"]
    api_log = logs / "api-server.log"
    wait_for(
        "airflow api-server",
        lambda: http_ok(f"{url}/api/v2/monitor/health"),
        pids["api-server"],
        api_log,
        timeout,
    )
    for component in ("scheduler", "triggerer", "dag_processor"):
        name = component.replace("_", "-")

        def healthy(component=component) -> bool:
            return http_json(f"{url}/api/v2/monitor/health")[component]["status"] == "healthy"

        wait_for(f"airflow {name}", healthy, pids[name], logs / f"{name}.log", timeout)
    for name in ("worker-1", "worker-2"):
        log = logs / f"{name}.log"
        wait_for(
            f"airflow celery {name}",
            lambda log=log: " ready." in log.read_text(errors="replace"),
            pids[name],
            log,
            timeout,
        )
    phase("components_ready")
    headers = {"Authorization": f"Bearer {token(state)}"}

    def parsed() -> bool:
        return (
            http_json(f"{url}/api/v2/dags?dag_id_pattern=azerion_mapped_prompts", headers=headers)[
                "total_entries"
            ]
            > 0
        )

    wait_for("the example DAGs' parsing", parsed, pids["dag-processor"], logs / "dag-processor.log", timeout)
    phase("dags_parsed")


def down(folder: Path) -> int:
    """Stop every process the cluster in ``folder`` started, by process group; PostgreSQL last."""
    state = read_state(folder)
    if state is None:
        print(f"No cluster in {folder} (no {STATE}): nothing to stop.")
        return 0
    pids = state.get("pids", {})
    if "scheduler" in pids:  # first: nothing schedules new work while the rest goes down
        stop_group(pids["scheduler"])
    stop_groups([pid for name, pid in pids.items() if name not in ("scheduler", "postgres", "redis")])
    if "redis" in pids:
        stop_group(pids["redis"])
    if "postgres" in pids:
        stop_postgres(folder, pids["postgres"])
    still = [name for name, up_ in running(state).items() if up_]
    state["pids"] = {}
    write_state(state)
    if still:
        print(f"Could not stop {', '.join(still)}; kill them by hand (see {folder / STATE}).")
        return 1
    print(f"The cluster in {folder} is down; its logs stay in {folder / 'logs'}.")
    return 0


def status(folder: Path) -> int:
    """Print which processes of the cluster run; exit 0 only when all of them do."""
    state = read_state(folder)
    if not state or not state.get("pids"):
        print(f"No cluster is up in {folder}. Start one with: make cluster up")
        return 1
    alive_by_name = running(state)
    for name, pid in state["pids"].items():
        print(f"  {name:<14} pid {pid:<8} {'running' if alive_by_name[name] else 'NOT RUNNING'}")
    ports = {k: v for k, v in state["ports"].items() if v}
    print(f"  ports: {json.dumps(ports)}")
    print(f"  UI: {state['ui']['url']}  login: {state['ui']['username']} / {state['ui']['password']}")
    return 0 if all(alive_by_name.values()) else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run ``up``, ``down`` or ``status``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--dir", type=Path, default=REPO / ".cluster", help="the cluster's folder")
    parser.add_argument("--statsd-port", type=int, default=0, help="send StatsD metrics to 127.0.0.1:PORT")
    parser.add_argument("--extra-dags", action="append", default=[], help="another DAG folder (a bundle)")
    parser.add_argument("--api-port", type=int, default=0, help="the UI/API port (default: a free one)")
    parser.add_argument("--worker-concurrency", type=int, default=4, help="task slots per Celery worker")
    parser.add_argument(
        "--serve-logs",
        action="store_true",
        help="start the workers' and triggerer's log servers (they bind every interface, not only loopback)",
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds each start-up wait may take")
    args = parser.parse_args(argv)
    folder = args.dir.resolve()
    try:
        if args.command == "up":
            return up(folder, args)
        return down(folder) if args.command == "down" else status(folder)
    except ClusterError as error:
        print(f"cluster {args.command} failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
