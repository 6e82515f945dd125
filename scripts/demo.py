"""``make demo``: run the daily example DAG end to end and show the images it produced.

Without ``AZERION_API_KEY`` everything stays on this machine: the Azerion emulator serves the
API on a free loopback port and nothing is billed. With ``AZERION_API_KEY`` set, the same run
calls the real API at https://api.azerion.ai/v1 (and is billed by Azerion).

Steps: start the emulator (unless a key is set); recreate a throw-away Airflow installation
(``.demo/airflow``: SQLite, no Airflow examples, DAGs from ``example_dags/``); point the
``azerion_default`` connection at the API through ``AIRFLOW_CONN_AZERION_DEFAULT``; run
``airflow db migrate`` and ``airflow dags test azerion_daily_content <date>``; list the images
under the output folder (``.demo/images``, recreated too), checking that each one decodes and
matches the checksum in its sidecar. Exits non-zero when anything fails.

Usage: ``python scripts/demo.py [--date YYYY-MM-DD] [--output-dir DIR] [--airflow-home DIR]``.

With ``--serve`` it then keeps an Airflow API server running on the demo's installation (on
127.0.0.1) and prints the URL of the run's Images tab and a login, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "azerion_daily_content"
API_KEY_ENV_VAR = "AZERION_API_KEY"
#: Written into folders the demo creates; only such folders are ever deleted by it.
MARKER = ".azerion-demo"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
#: Log lines of the DAG run worth showing live; the full log goes to a file.
SHOWN = ("image(s)", ": wrote ", "AZERION ALERT", "[error", "ERROR", "Traceback", "DagRun Finished")
#: A structlog line's timestamp and level, and its trailing logger name and key=value fields.
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d[T ][\d:.+]+Z?\s+\[\s*(?P<level>\w+)\s*\]\s+")
_LOG_SUFFIX = re.compile(r"\s+\[[\w.]+\](\s+\w+=.*)?$")


class DemoError(Exception):
    """A step failed; the message says which and where its log is."""


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", default=datetime.date.today().isoformat(), help="logical date of the run")
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / ".demo" / "images")
    parser.add_argument("--airflow-home", type=Path, default=REPO_ROOT / ".demo" / "airflow")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per Airflow command")
    parser.add_argument(
        "--serve", action="store_true", help="then keep an Airflow UI running on the images (until Ctrl-C)"
    )
    parser.add_argument("--port", type=int, default=0, help="port of the --serve UI (default: a free one)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        images = run_demo(args.output_dir.resolve(), args.airflow_home.resolve(), args.date, args.timeout)
    except DemoError as err:
        print(f"\nDEMO FAILED: {err}", flush=True)
        return 1
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s: {len(images)} image(s) generated.")
    if not args.serve:
        python = Path(sys.executable)
        shown = python.relative_to(REPO_ROOT) if python.is_relative_to(REPO_ROOT) else python
        print(f"To see them in Airflow's UI (the Images tab): {shown} scripts/demo.py --serve")
        return 0
    try:
        serve_ui(args.airflow_home.resolve(), args.output_dir.resolve(), args.port, args.timeout)
    except DemoError as err:
        print(f"\nDEMO UI FAILED: {err}", flush=True)
        return 1
    return 0


def run_demo(output_dir: Path, airflow_home: Path, date: str, timeout: float) -> list[dict]:
    """Run the daily DAG once against the emulator (or the real API with a key) and check its images.

    :param output_dir: folder for the images; created, or recreated if an earlier demo made it.
    :param airflow_home: folder for the throw-away Airflow installation; likewise recreated.
    :param date: logical date passed to ``airflow dags test``.
    :param timeout: seconds allowed for each Airflow command.
    :return: one dict per image: ``path``, ``bytes``, ``format``, ``width``, ``height``.
    :raises DemoError: when a step fails or an image is missing or invalid.
    """
    api_key = os.environ.get(API_KEY_ENV_VAR)
    for folder in (output_dir, airflow_home):
        recreate(folder)
    emulator = None
    try:
        if api_key:
            print(f"{API_KEY_ENV_VAR} is set: calling the real Azerion API (billed by Azerion).")
            # No host: the public API. No password: the hook reads AZERION_API_KEY itself.
            connection = {"conn_type": "azerion"}
            secrets = [api_key]
        else:
            from airflow_provider_azerion.emulator import EmulatorServer

            # 512 px keeps rendering quick; the API's own sizes would be about 1 MP.
            emulator = EmulatorServer(host="127.0.0.1", port=0, max_side=512).start()
            print(
                f"No {API_KEY_ENV_VAR} set: using the local Azerion emulator at {emulator.base_url} "
                "(nothing leaves this machine, nothing is billed)."
            )
            connection = {"conn_type": "azerion", "host": emulator.base_url, "password": emulator.api_key}
            secrets = [emulator.api_key]
        env = airflow_env(airflow_home, output_dir, connection)
        print(f"Airflow home: {airflow_home} (SQLite, recreated on every run)")
        airflow = [sys.executable, "-m", "airflow"]
        run_step([*airflow, "db", "migrate"], env, airflow_home / "db-migrate.log", timeout, secrets)
        run_step(
            [*airflow, "dags", "test", DAG_ID, date],
            env,
            airflow_home / "dags-test.log",
            timeout,
            secrets,
            show=lambda line: any(token in line for token in SHOWN),
            tidy=lambda line: tidy(line, output_dir),
        )
    finally:
        if emulator is not None:
            emulator.stop()
    return report_images(output_dir)


def serve_ui(airflow_home: Path, output_dir: Path, port: int, timeout: float) -> None:
    """Run ``airflow api-server`` on the demo's installation until Ctrl-C; print the Images tab's URL.

    The server listens on 127.0.0.1 only, with the simple auth manager and one user, ``admin``,
    whose password is made up now and printed.
    """
    import secrets
    import socket
    import sqlite3
    import urllib.request
    from urllib.parse import quote

    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    password = secrets.token_urlsafe(9)
    passwords = airflow_home / "ui-passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        row = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC", (DAG_ID,)).fetchone()
    if row is None:
        raise DemoError(f"no run of {DAG_ID} in {airflow_home / 'airflow.db'}")
    env = airflow_env(airflow_home, output_dir, {"conn_type": "azerion"})
    env.update(
        {
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        }
    )
    log_path = airflow_home / "api-server.log"
    print(f"\n$ airflow api-server --host 127.0.0.1 --port {port}    (full log: {log_path})", flush=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)),
                *("--workers", "1"),  # one person looks at it
            ],
            env=env,
            cwd=airflow_home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so stop_group() reaches its workers too
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise DemoError(f"airflow api-server exited with {process.returncode}; see {log_path}")
            with suppress(OSError), urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):  # noqa: S310
                break
            if time.monotonic() > deadline:
                raise DemoError(f"airflow api-server did not start within {timeout:g} s; see {log_path}")
            time.sleep(0.5)
        run = f"{url}/dags/{DAG_ID}/runs/{quote(row[0], safe='')}"
        print(f"\nThe run's images in Airflow's UI (log in as admin, password {password}):")
        print(f"  task instance: {run}/tasks/generate/plugin/azerion-images")
        print(f"  DAG run:       {run}/plugin/azerion-run-images")
        print("Ctrl-C stops the server.", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)  # stopped from outside: still stop the server
        with suppress(KeyboardInterrupt):
            process.wait()
    finally:
        stop_group(process)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def recreate(folder: Path) -> None:
    """Empty ``folder`` for a fresh run, refusing to delete anything the demo did not create."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise DemoError(f"{folder} exists and was not made by the demo; not deleting it")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("Created by scripts/demo.py; deleted and recreated on every run.\n")


def airflow_env(airflow_home: Path, output_dir: Path, connection: dict) -> dict[str, str]:
    """The environment of the Airflow commands: only the demo's settings, none of the caller's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "example_dags"),
            "AIRFLOW_CONN_AZERION_DEFAULT": json.dumps(connection),
            # The DAG templates its output folder from this Variable.
            "AIRFLOW_VAR_AZERION_OUTPUT_BASE": output_dir.as_uri(),
        }
    )
    return env


def run_step(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    timeout: float,
    secrets: list[str],
    show: Callable[[str], bool] = lambda line: False,
    tidy: Callable[[str], str] = str.rstrip,
) -> None:
    """Run one Airflow command with a deadline; log all its output, echo the lines ``show`` picks.

    The lines echoed go through ``tidy`` first; the log file gets them as they are (secrets
    redacted).
    """
    title = " ".join(["airflow", *command[3:]])  # command is [python, -m, airflow, ...]
    print(f"\n$ {title}    (full log: {log_path})", flush=True)
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=log_path.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # so a timeout can stop everything the command started
        )

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                line = redact(line, secrets)
                log.write(line)
                if show(line):
                    print("  " + shorten(tidy(line)), flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(process)
            raise DemoError(f"{title} did not finish within {timeout:g} s; see {log_path}") from None
        finally:
            reader.join(10)
    if process.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-25:])
        raise DemoError(f"{title} exited with {process.returncode}; last lines of {log_path}:\n{tail}")
    print(f"  done in {time.monotonic() - started:.1f} s", flush=True)


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session`` and whatever it started."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def redact(line: str, secrets: list[str]) -> str:
    """``line`` with every secret replaced by ``***`` (Airflow masks them too; this is a backstop)."""
    for secret in secrets:
        line = line.replace(secret, "***")
    return line


def tidy(line: str, output_dir: Path) -> str:
    """A log line of the DAG run as a person wants to read it: level, message, short paths."""
    line = line.rstrip()
    if "DagRun Finished" in line:
        state = re.search(r"state=(\w+)", line)
        return f"DAG run finished: {state.group(1) if state else 'unknown'}"
    match = _LOG_PREFIX.match(line)
    if match is None:
        return line
    message = _LOG_SUFFIX.sub("", line[match.end() :])
    return f"{match['level']}: {message.replace(output_dir.as_uri() + '/', '')}"


def shorten(line: str, limit: int = 220) -> str:
    """One log line cut to a readable width."""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def report_images(output_dir: Path) -> list[dict]:
    """Print and check every image under ``output_dir``: it must decode and match its sidecar.

    :raises DemoError: when there is no image or one is invalid.
    """
    try:
        from PIL import Image
    except ImportError:
        raise DemoError(
            "Pillow is needed to check the images: pip install 'airflow-provider-azerion[emulator]'"
        ) from None

    paths = sorted(p for p in output_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    print(f"\nOutput folder: {output_dir.as_uri()}")
    if not paths:
        raise DemoError(f"the run succeeded but wrote no image under {output_dir}")
    images, problems = [], []
    for path in paths:
        data = path.read_bytes()
        sidecar_path = path.with_suffix(".json")
        sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.exists() else {}
        try:
            with Image.open(path) as image:
                image.verify()  # decodes the whole file; a truncated or corrupt one raises
            with Image.open(path) as image:
                fmt, (width, height) = image.format, image.size
        except Exception as err:
            problems.append(f"{path}: not a valid image ({err})")
            continue
        if sidecar.get("sha256") != hashlib.sha256(data).hexdigest():
            problems.append(f"{path}: checksum differs from its sidecar {sidecar_path.name}")
        images.append({"path": path, "bytes": len(data), "format": fmt, "width": width, "height": height})
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        print(f"  {shown}  {len(data):>8,} bytes  {width}x{height} {fmt}")
        if sidecar.get("prompt"):
            print(f"      prompt: {shorten(sidecar['prompt'], 110)}")
    if problems:
        raise DemoError("invalid output:\n  " + "\n  ".join(problems))
    print(f"All {len(images)} image(s) decode and match the sha256 in their JSON sidecars.")
    return images


if __name__ == "__main__":
    sys.exit(main())
