"""A real ``airflow api-server`` and headless Chromium for the browser tests.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright from PyPI launched with that
executable: nothing is downloaded at run time. Without it the tests fail, saying how to install
it (``make test`` installs it when it runs as root on Debian); they never skip.

The API server runs in its own process group on 127.0.0.1, on the test session's Airflow home and
SQLite DB (where ``dag.test()`` wrote the runs), under the base path ``/airflow`` (``[api]
base_url``) so that every link has to carry it, with the simple auth manager and one user whose
password the test writes. It runs one worker process (``AZERION_UI_WORKERS`` sets another count).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import free_port, start_api_server, stop

CHROMIUM = os.environ.get("AZERION_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASE_PATH = "/airflow"
USERNAME = "viewer"
INSTALL_HINT = (
    f"The browser tests need Chromium at {CHROMIUM} (Debian's package). Install it with "
    "`sudo apt-get update && sudo apt-get install -y chromium` (`make test` does this by itself when "
    "run as root), or point AZERION_TEST_CHROMIUM at another Chromium executable."
)


def require_chromium() -> None:
    """Fail (never skip) when Chromium is missing, saying how to install it."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(INSTALL_HINT, pytrace=False)


@contextmanager
def chromium() -> Iterator:
    """Playwright's Chromium, launched from the Debian executable."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class ApiServer:
    """A running ``airflow api-server``.

    :param url: its root URL, base path included (``http://127.0.0.1:<port>/airflow``).
    :param password: the password of :data:`USERNAME`.
    :param log: its output.
    """

    url: str
    password: str
    log: Path

    def ui(self, path: str) -> str:
        """A URL of the UI, e.g. ``ui("/dags/d/runs/r")``."""
        return self.url + path


@contextmanager
def api_server(workdir: Path) -> Iterator[ApiServer]:
    """Start ``airflow api-server`` on this session's Airflow home; stop it (and its workers) after."""
    port = free_port()
    password = secrets.token_urlsafe(12)
    passwords = workdir / "simple-auth-passwords.json"
    passwords.write_text(json.dumps({USERNAME: password}))
    url = f"http://127.0.0.1:{port}{BASE_PATH}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        {
            "AIRFLOW__API__BASE_URL": url + "/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
        }
    )
    log = workdir / "api-server.log"
    health = f"{BASE_PATH}/api/v2/monitor/health"
    workers = int(os.environ.get("AZERION_UI_WORKERS", "1"))
    process = start_api_server(env, port, log, apps="core", health=health, workers=workers)
    try:
        yield ApiServer(url, password, log)
    finally:
        stop(process)
