"""``scripts/demo.py --serve``: after the demo, an Airflow UI on its installation shows the images."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import REPO_ROOT
from tests.ui.conftest import parse_page

DEMO = REPO_ROOT / "scripts" / "demo.py"
DEADLINE = 330


@pytest.mark.timeout(DEADLINE + 60)
def test_demo_serve_keeps_a_ui_with_the_images_tab_running_until_stopped(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AZERION_"))}
    command = [
        *(sys.executable, str(DEMO), "--serve", "--date", "2025-06-01", "--timeout", "200"),
        *("--output-dir", str(tmp_path / "images"), "--airflow-home", str(tmp_path / "airflow")),
    ]
    demo = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while not any("DAG run:" in line for line in lines):
            assert demo.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)
        out = "".join(lines)
        password = re.search(r"log in as admin, password (\S+)\)", out).group(1)
        tab = re.search(r"task instance: (\S+)", out).group(1)
        parts = urlsplit(tab)
        run_id = parts.path.split("/runs/")[1].split("/")[0]
        root = f"{parts.scheme}://{parts.netloc}"

        token = requests.post(
            f"{root}/auth/token", json={"username": "admin", "password": password}, timeout=30
        ).json()["access_token"]
        ui = requests.get(tab, timeout=30)
        images = requests.get(
            f"{root}/azerion/dags/azerion_daily_content/runs/{run_id}/tasks/generate/-1/images",
            cookies={"_token": token},
            timeout=60,
        )
        anonymous = requests.get(
            f"{root}/azerion/dags/azerion_daily_content/runs/{run_id}/images", timeout=60
        )

        demo.send_signal(signal.SIGTERM)  # as a person's Ctrl-C would, from outside
        demo.wait(timeout=60)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        reader.join(10)

    assert ui.status_code == 200
    assert images.status_code == 200
    assert len(parse_page(images.text).imgs) == len(list((tmp_path / "images").rglob("*.jpg"))) == 4
    assert anonymous.status_code == 401
    assert demo.returncode == 0
    with socket.socket() as sock:  # the API server went with the demo
        assert sock.connect_ex((parts.hostname, parts.port)) != 0
