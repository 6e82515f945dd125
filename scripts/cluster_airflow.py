"""Airflow's side of ``make cluster``: the configuration every component shares, and its components.

Everything is configured through ``AIRFLOW__*`` variables, built once by :func:`airflow_env` and
saved (mode 0600) in the cluster's folder so that tests and ``scripts/cluster_scale.py`` run
``airflow`` commands against the same deployment. No ``AIRFLOW_CONN_*`` is set: connections and
variables live in the metadata DB (:func:`seed`) and workers read them through the Execution API.
Standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from cluster_services import ClusterError, keyless_environ, tail

REPO = Path(__file__).resolve().parent.parent
AIRFLOW = [sys.executable, "-m", "airflow"]

#: The environment variable through which seed() hands the API key to STORE_CONNECTION.
SEED_KEY_VARIABLE = "AZERION_CLUSTER_CONN_PASSWORD"

#: Stores one connection in the metadata DB as ``airflow connections add`` does, but takes its
#: password from the environment: arguments are conn_id, conn_type, host, extra (JSON).
STORE_CONNECTION = f"""
import os, sys
from airflow.models.connection import Connection
from airflow.utils.session import create_session

conn_id, conn_type, host, extra = sys.argv[1:5]
password = os.environ.pop({SEED_KEY_VARIABLE!r})
with create_session() as session:
    session.add(Connection(conn_id=conn_id, conn_type=conn_type, host=host, password=password, extra=extra))
print(f"Stored connection {{conn_id}} ({{conn_type}}, {{host}}).")
"""
CELERY_EXECUTOR = "airflow.providers.celery.executors.celery_executor.CeleryExecutor"
SIMPLE_AUTH = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
BUCKET = "azerion-images"
#: A dead worker's task is failed after this many seconds without a heartbeat (Airflow's default: 300).
HEARTBEAT_TIMEOUT = 20


def bundles(extra_dags: list[str]) -> list[dict]:
    """The DAG bundles: the repo's ``example_dags/``, then one per ``--extra-dags`` folder."""
    folders = [REPO / "example_dags", *(Path(path).resolve() for path in extra_dags)]
    return [
        {
            "name": "repo-example-dags" if i == 0 else f"extra-dags-{i}",
            "classpath": LOCAL_BUNDLE,
            "kwargs": {"path": str(f)},
        }
        for i, f in enumerate(folders)
    ]


def airflow_env(state: dict) -> dict[str, str]:
    """The environment of every Airflow process of the cluster ``state`` describes."""
    folder, ports, secrets = Path(state["folder"]), state["ports"], state["secrets"]
    db = f"airflow:{secrets['db_password']}@127.0.0.1:{ports['postgres']}/airflow"
    api = f"http://127.0.0.1:{ports['api']}"
    env = {k: v for k, v in keyless_environ().items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(folder / "airflow"),
            "AIRFLOW__CORE__EXECUTOR": CELERY_EXECUTOR,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db}",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+asyncpg://{db}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://:{secrets['redis_password']}@127.0.0.1:{ports['redis']}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{db}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(state["worker_concurrency"]),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets["jwt_secret"],
            # Connection passwords (the API key among them) are stored encrypted in the DB.
            "AIRFLOW__CORE__FERNET_KEY": secrets["fernet_key"],
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles(state["extra_dags"])),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(folder / "airflow" / "passwords.json"),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker_logs"][0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger_logs"]),
        }
    )
    # Ambient AWS settings stand in for an instance role: ObjectStoragePath("s3://...") without a
    # connection (the Variable azerion_output_base in most examples) reaches moto too.
    moto = f"http://127.0.0.1:{ports['moto']}"
    env.update(
        {
            "AWS_ENDPOINT_URL": moto,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    if ports.get("statsd"):
        env.update(
            {
                "AIRFLOW__METRICS__STATSD_ON": "True",
                "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__STATSD_PORT": str(ports["statsd"]),
                "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
            }
        )
    return env


def worker_env(env: dict[str, str], state: dict, index: int) -> dict[str, str]:
    """A Celery worker's environment: its own log server port and the hostname its tasks record.

    Both workers share this machine, so Airflow's default hostname (the FQDN) would not tell them
    apart; ``scripts/cluster_hostname.py`` gives each task the worker's name instead.
    """
    scripts = str(Path(__file__).resolve().parent)
    return {
        **env,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(state["ports"]["worker_logs"][index]),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "cluster_hostname.worker_hostname",
        "AZERION_CLUSTER_WORKER_HOSTNAME": worker_name(index),
        "PYTHONPATH": os.pathsep.join(filter(None, [scripts, env.get("PYTHONPATH")])),
    }


def worker_name(index: int) -> str:
    """The Celery hostname, and the task instances' ``hostname``, of worker ``index`` (0-based)."""
    return f"worker-{index + 1}.localhost"


def components(state: dict) -> list[tuple[str, list[str], bool]]:
    """The long-running Airflow processes: (name, ``airflow`` arguments, whether it is a worker).

    The log servers of workers and triggerer bind every interface (Airflow does not let their
    address be set), so they run only with ``--serve-logs``; without them the API server reads
    the task logs from the disk every process of the cluster shares.
    """
    skip = [] if state.get("serve_logs") else ["--skip-serve-logs"]
    api = ["api-server", "--host", "127.0.0.1", "--port", str(state["ports"]["api"]), "--workers", "1"]
    workers = [
        (
            f"worker-{i + 1}",
            [
                *("celery", "worker", "--celery-hostname", worker_name(i)),
                *("--concurrency", str(state["worker_concurrency"]), *skip),
            ],
            True,
        )
        for i in range(len(state["ports"]["worker_logs"]))
    ]
    return [
        ("api-server", api, False),
        ("scheduler", ["scheduler"], False),
        ("dag-processor", ["dag-processor"], False),
        ("triggerer", ["triggerer", *skip], False),
        *workers,
    ]


def run(args: list[str], env: dict[str, str], folder: Path, what: str, timeout: float) -> None:
    """Run ``airflow <args>`` to completion, its output appended to ``logs/setup.log``."""
    log = folder / "logs" / "setup.log"
    with log.open("ab") as out:
        out.write(f"\n$ airflow {args[0]} {args[1] if len(args) > 1 else ''} ...\n".encode())
        out.flush()
        try:
            done = subprocess.run(
                [*AIRFLOW, *args], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(
                f"{what} took over {timeout:g} s (raise --timeout on a slow machine); "
                f"{log} ends with:\n{tail(log)}"
            ) from None
    if done.returncode != 0:
        raise ClusterError(f"{what} failed (exit code {done.returncode}); {log} ends with:\n{tail(log)}")


def seed(state: dict, env: dict[str, str], api_key: str, timeout: float) -> None:
    """Connections, Variables and the bucket the example DAGs need, stored in the metadata DB.

    The three commands run side by side. The API key reaches its process through that process's
    environment only: never an argument list (which ``ps`` shows every user), a file or a log.
    """
    folder, ports = Path(state["folder"]), state["ports"]
    emulator = {"read_timeout": 120, "backoff_factor": 0.05, "max_retry_wait": 1}
    moto = f"http://127.0.0.1:{ports['moto']}"
    aws = {"endpoint_url": moto, "region_name": "us-east-1"}
    commands = {
        "azerion_default": [
            *(sys.executable, "-c", STORE_CONNECTION, "azerion_default", "azerion"),
            *(f"http://127.0.0.1:{ports['emulator']}/v1", json.dumps(emulator)),
        ],
        "aws_default": [
            *AIRFLOW,
            *("connections", "add", "aws_default", "--conn-type", "aws", "--conn-login", "testing"),
            *("--conn-password", "testing", "--conn-extra", json.dumps(aws)),
        ],
        "azerion_output_base": [
            *AIRFLOW,
            *("variables", "set", "azerion_output_base", f"s3://{BUCKET}/examples/"),
        ],
    }
    log = folder / "logs" / "setup.log"
    with_key = {**env, SEED_KEY_VARIABLE: api_key}
    with log.open("ab") as out:
        running = {
            name: subprocess.Popen(
                argv, env=with_key if name == "azerion_default" else env, stdout=out, stderr=subprocess.STDOUT
            )
            for name, argv in commands.items()
        }
    try:
        for name, process in running.items():
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise ClusterError(
                    f"storing {name} took over {timeout:g} s (raise --timeout on a slow machine); "
                    f"{log} ends with:\n{tail(log)}"
                ) from None
            if code != 0:
                raise ClusterError(f"storing {name} in the metadata DB failed; {log} ends with:\n{tail(log)}")
    finally:
        for process in running.values():  # none outlives a failed start
            if process.poll() is None:
                process.kill()
                process.wait()
    # moto checks no signature: a bare PUT creates the bucket.
    request = urllib.request.Request(f"{moto}/{BUCKET}", method="PUT")  # noqa: S310 (loopback URL)
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (loopback URL)
        pass
