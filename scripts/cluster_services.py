"""The processes of ``make cluster`` that are not Airflow: starting, waiting, stopping, and the servers.

Every process starts in its own session, its output going to ``logs/<name>.log`` in the cluster's
folder, so that stopping its process group reaches whatever it forked. Every wait is bounded and
fails with a :class:`ClusterError` carrying the tail of the process's log. PostgreSQL refuses to
run as root: it runs as the ``postgres`` user through ``runuser``, on a data directory in the
cluster's folder. Standard library only: ``scripts/cluster.py`` imports this before any venv check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

PG_BIN = Path(os.environ.get("AZERION_CLUSTER_PG_BIN", "/usr/lib/postgresql/15/bin"))
APT_PACKAGES = ("postgresql-15", "redis-server")
APT_COMMAND = f"apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y {' '.join(APT_PACKAGES)}"


#: Environment variables that may hold an API key. No process of the cluster inherits them; the
#: emulator alone gets the key, under its own name.
KEY_VARIABLES = (
    "AZERION_API_KEY",
    "AZERION_ACCESS_TOKEN",
    "AZERION_EMULATOR_API_KEY",
    "AZERION_CLUSTER_API_KEY",
)


def keyless_environ() -> dict[str, str]:
    """This process's environment without the variables that may hold an API key."""
    return {name: value for name, value in os.environ.items() if name not in KEY_VARIABLES}


class ClusterError(Exception):
    """A step of the cluster failed; the message says what happened and what to do."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(log: Path, chars: int = 3000) -> str:
    """The end of a log file, or a note that it is missing."""
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return f"(no log at {log})"


def start(name: str, argv: list[str], env: dict[str, str], folder: Path, cwd: Path | None = None) -> int:
    """Start ``argv`` in its own session with its output in ``folder/logs/<name>.log``; return its pid."""
    log = folder / "logs" / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd or folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process.pid


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group ``pid`` leads, then SIGKILL it if it is still there after ``timeout``."""
    stop_groups([pid], timeout)


def stop_groups(pids: list[int], timeout: float = 20.0) -> None:
    """SIGTERM the process groups ``pids`` lead, all at once; SIGKILL those left after ``timeout``."""
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def wait_for(what: str, check, pid: int, log: Path, timeout: float) -> None:
    """Call ``check()`` until it is true; fail if ``pid`` exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        with suppress(OSError, ValueError):
            if check():
                return
        if not alive(pid):
            raise ClusterError(f"{what} exited before it was ready; its log ({log}) ends with:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{what} was not ready within {timeout:g} s; its log ({log}) ends with:\n{tail(log)}\n"
                "Look at the log above; on a slow machine raise the wait with --timeout."
            )
        time.sleep(0.5)


def http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    """Whether ``url`` answers 2xx within 3 s."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback URLs only)
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 (loopback URLs only)
            return 200 <= response.status < 300
    except urllib.error.URLError:
        return False


def http_json(url: str, data: dict | None = None, headers: dict[str, str] | None = None, method: str = ""):
    """GET (or POST ``data`` as JSON to) ``url`` and return the decoded JSON answer."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback URLs only)
        url,
        data=body,
        method=method or ("GET" if body is None else "POST"),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback URLs only)
        return json.loads(response.read() or b"null")


# -- system packages -----------------------------------------------------------------------------


def missing_packages() -> list[str]:
    """The Debian packages the cluster needs and this machine lacks."""
    missing = []
    if not (PG_BIN / "postgres").exists():
        missing.append("postgresql-15")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    return missing


def ensure_packages() -> float:
    """Install PostgreSQL 15 and Redis with apt when missing and root; return the seconds it took.

    The packages' own services must not start: ``policy-rc.d`` answers 101 ("not allowed") to
    every service start for the install's duration, so no system cluster takes port 5432.
    """
    missing = missing_packages()
    if not missing:
        return 0.0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterError(
            f"The cluster needs {', '.join(missing)}, which is not installed. Install it as root:\n"
            f"  {APT_COMMAND}\nthen run this command again."
        )
    print(f"Installing {' '.join(missing)} with apt-get (once per machine)...", flush=True)
    started = time.monotonic()
    policy = Path("/usr/sbin/policy-rc.d")
    had_policy = policy.exists()
    env = {**keyless_environ(), "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not had_policy:
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise ClusterError(
                    f"`{' '.join(argv)}` failed with exit code {done.returncode}:\n"
                    f"{(done.stdout + done.stderr)[-2000:]}\nFix apt, or run yourself: {APT_COMMAND}"
                )
    finally:
        if not had_policy:
            policy.unlink(missing_ok=True)
    return time.monotonic() - started


# -- PostgreSQL ----------------------------------------------------------------------------------


def as_postgres(argv: list[str]) -> list[str]:
    """``argv`` run as the ``postgres`` user when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start_postgres(folder: Path, port: int, password: str, timeout: float) -> int:
    """initdb a data directory in ``folder``, start PostgreSQL on 127.0.0.1:``port``, create ``airflow``.

    :return: the pid of the process group running the server.
    """
    data, sockets = folder / "pgdata", folder / "pgsocket"
    sockets.mkdir(exist_ok=True)
    pwfile = folder / "pgpass.tmp"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        for path in (sockets, pwfile):
            shutil.chown(path, "postgres", "postgres")
    log = folder / "logs" / "postgres.log"
    if not (data / "PG_VERSION").exists():
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}"]
        initdb += ["--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"]
        if os.geteuid() == 0:
            data.mkdir(mode=0o700)
            shutil.chown(data, "postgres", "postgres")
        done = subprocess.run(as_postgres(initdb), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ClusterError(f"initdb failed:\n{(done.stdout + done.stderr)[-2000:]}")
    pwfile.unlink()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(sockets),
        "max_connections": "200",
        "fsync": "off",  # a throw-away development database: speed over durability
        "synchronous_commit": "off",
    }
    argv = [str(PG_BIN / "postgres"), "-D", str(data)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    pid = start("postgres", as_postgres(argv), keyless_environ(), folder, cwd=Path("/"))
    ready = [str(PG_BIN / "pg_isready"), "-h", str(sockets), "-p", str(port), "-q"]
    wait_for("PostgreSQL", lambda: subprocess.run(ready, check=False).returncode == 0, pid, log, timeout)
    sql = (
        f"CREATE ROLE airflow LOGIN PASSWORD '{password}';"  # the password is ours: [A-Za-z0-9_-] only
        " CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8';"
    )
    psql = [
        str(PG_BIN / "psql"),
        "-h",
        str(sockets),
        "-p",
        str(port),
        "-U",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
    ]
    for statement in sql.split(";")[:2]:
        done = subprocess.run(as_postgres([*psql, "-c", statement]), capture_output=True, text=True)
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise ClusterError(f"psql could not set up the airflow database: {done.stderr[-1000:]}")
    return pid


def stop_postgres(folder: Path, pid: int) -> None:
    """Fast shutdown (``pg_ctl stop -m fast``), else SIGTERM/SIGKILL to the server's process group."""
    data = folder / "pgdata"
    if (data / "postmaster.pid").exists():
        with suppress(subprocess.TimeoutExpired):
            subprocess.run(
                as_postgres(
                    [str(PG_BIN / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "30"]
                ),
                capture_output=True,
                timeout=40,
            )
    stop_group(pid, timeout=10)


# -- Redis ---------------------------------------------------------------------------------------


def start_redis(folder: Path, port: int, password: str, timeout: float) -> int:
    """Redis on 127.0.0.1:``port`` with a password and no persistence; return its pid."""
    data = folder / "redis"
    data.mkdir(exist_ok=True)
    config = data / "redis.conf"
    config.write_text(
        f"bind 127.0.0.1\nport {port}\nrequirepass {password}\ndir {data}\n"
        'save ""\nappendonly no\ndaemonize no\nprotected-mode yes\n'
    )
    config.chmod(0o600)
    pid = start("redis", ["redis-server", str(config)], keyless_environ(), folder)
    wait_for("Redis", lambda: redis_ping(port, password), pid, folder / "logs" / "redis.log", timeout)
    return pid


def redis_ping(port: int, password: str) -> bool:
    """Whether Redis answers PING after AUTH."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
        answer = b""
        while answer.count(b"\r\n") < 2:
            chunk = sock.recv(256)
            if not chunk:
                break
            answer += chunk
    return answer.endswith(b"+PONG\r\n")
