"""Fixtures for the Images tab tests: DAG runs against the emulator, and Airflow's API app.

The API-level tests run Airflow's own FastAPI app in this process (``create_app``, with the
plugin mounted from its entry point like on a real API server) behind Starlette's test client.
Its auth manager is :class:`tests.ui.auth.ScopedAuthManager`, Airflow's simple auth manager with
two restricted users, because every role of the simple auth manager may read every DAG and a 403
needs a user who may not. Tokens are made by that auth manager, as its login would make them.

The browser tests (``test_browser.py``) start a real ``airflow api-server`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    AIRFLOW_HOME,
    DagRunResult,
    emulator_connection_json,
    put_emulator_behind_default_connection,
)

# The API server's thumbnails on disk: in this session's Airflow home, not the shared temp folder.
os.environ.setdefault("AIRFLOW__AZERION__THUMBNAIL_CACHE_DIR", str(AIRFLOW_HOME / "azerion-thumbnails"))

DAG_FILE = "azerion_ui.py"
#: Recognisable, so tests can prove they never reach a page.
SECRET_KEY = "sk-azerion-UI-SECRET-7e11ab"
OUTPUT_CONN_ID = "azerion_ui_secret_output_conn"
#: A prompt that would run script if a page did not escape it.
HOSTILE_PROMPT = "<script>alert('prompt')</script><img src=x onerror=alert(1)> & \"quotes\""


def connection_json(base_url: str) -> str:
    """``AIRFLOW_CONN_AZERION_DEFAULT`` for an emulator, with fast hook backoff."""
    return emulator_connection_json(base_url, SECRET_KEY)


@pytest.fixture
def emulator(azerion_emulator, monkeypatch):
    """The emulator behind ``azerion_default``; no ``AZERION_API_KEY`` fallback."""
    return put_emulator_behind_default_connection(azerion_emulator, monkeypatch, SECRET_KEY)


def ui_conf(output_dir: Path, prompts: list[str], **params: Any) -> dict[str, Any]:
    """The ``conf`` of a run of the ``azerion_ui*`` DAGs."""
    return {"prompts": prompts, "output_path": output_dir.as_uri() + "/", **params}


def task_folder(output_dir: Path, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Path:
    """The folder the operator writes a task instance's files into (computed by the package)."""
    from airflow_provider_azerion.folder import OutputFolder, TaskIdentity
    from airflow_provider_azerion.storage import resolve_output_root

    root = resolve_output_root(output_dir.as_uri() + "/")
    return Path(OutputFolder(root, TaskIdentity(dag_id, run_id, task_id, map_index)).path.path)


def stored_images(folder: Path) -> list[Path]:
    """Image files the operator stored in a task instance's folder."""
    return sorted(p for p in folder.iterdir() if p.suffix in (".jpg", ".png", ".webp", ".gif"))


@dataclass
class ApiClient:
    """Airflow's API app in this process, and tokens for its users."""

    client: Any
    auth_manager: Any

    def token(self, username: str = "viewer", role: str | None = "viewer") -> str:
        """A JWT for a user of the simple auth manager (what its login puts in ``_token``)."""
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        return self.auth_manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))

    def get(self, url: str, *, user: str | None = "viewer", via: str = "cookie", **kwargs: Any):
        """GET ``url`` as ``user`` (``None``: no credentials), with the token in a cookie or header."""
        headers = dict(kwargs.pop("headers", {}) or {})
        self.client.cookies.clear()
        if user is not None:
            token = self.token(user)
            if via == "cookie":
                self.client.cookies.set("_token", token)
            else:
                headers["Authorization"] = f"Bearer {token}"
        return self.client.get(url, headers=headers, follow_redirects=False, **kwargs)


@pytest.fixture(scope="session")
def api(airflow_db) -> Iterator[ApiClient]:
    """Airflow's API app (core apps and plugins) in this process, with the scoped test auth manager."""
    import secrets

    from fastapi.testclient import TestClient

    settings = {
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.ui.auth.ScopedAuthManager",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app

        try:
            app = create_app(apps="core")
            with TestClient(app, base_url="http://127.0.0.1") as client:
                yield ApiClient(client, get_auth_manager())
        finally:
            purge_cached_app()


def ti_url(
    result: DagRunResult, task_id: str = "generate", map_index: int | str = -1, rest: str = "images"
) -> str:
    """URL of a task instance's route of the plugin (``rest``: ``images``, ``images/<name>``...)."""
    from urllib.parse import quote

    run = quote(result.run_id, safe="")
    return f"/azerion/dags/{result.dag.dag_id}/runs/{run}/tasks/{task_id}/{map_index}/{rest}"


def run_url(result: DagRunResult) -> str:
    """URL of a DAG run's Images page."""
    from urllib.parse import quote

    return f"/azerion/dags/{result.dag.dag_id}/runs/{quote(result.run_id, safe='')}/images"


@dataclass
class SharedRun:
    """One run of ``azerion_ui`` shared by the tests that only read it.

    :param result: the run.
    :param output_dir: the root of its ``output_path``.
    :param prompts: the prompts of its unmapped ``generate`` task.
    """

    result: DagRunResult
    output_dir: Path
    prompts: list[str]

    def folder(self, task_id: str = "generate", map_index: int = -1) -> Path:
        """A task instance's folder."""
        return task_folder(self.output_dir, self.result.dag.dag_id, self.result.run_id, task_id, map_index)


SHARED_PROMPTS = ["a red fox in the snow", HOSTILE_PROMPT, "a lighthouse at dusk"]


def run_against_emulator(dag_id: str, conf: dict[str, Any], **emulator: Any) -> DagRunResult:
    """Run a DAG of ``azerion_ui.py`` with ``dag.test()`` against a fresh emulator (for shared runs).

    :param emulator: ``EmulatorServer`` options (``max_side``, ``noise``...).
    """
    from airflow_provider_azerion.emulator.server import EmulatorServer
    from tests.conftest import load_dag

    with (
        EmulatorServer(host="127.0.0.1", port=0, api_key=SECRET_KEY, **emulator) as server,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("AIRFLOW_CONN_AZERION_DEFAULT", connection_json(server.base_url))
        patch.delenv("AZERION_API_KEY", raising=False)
        dag = load_dag(DAG_FILE, dag_id)
        return DagRunResult(dag=dag, dag_run=dag.test(run_conf=conf))


@pytest.fixture(scope="session")
def shared_run(airflow_db, tmp_path_factory) -> SharedRun:
    """A successful run of ``azerion_ui`` (3 prompts, 2 mapped, an ``output_conn_id``). Do not modify."""
    output_dir = tmp_path_factory.mktemp("shared-images")
    conf = ui_conf(output_dir, SHARED_PROMPTS, output_conn_id=OUTPUT_CONN_ID)
    result = run_against_emulator("azerion_ui", conf)
    assert result.state == "success", result.states()
    return SharedRun(result, output_dir, SHARED_PROMPTS)


_VOID_TAGS = frozenset({"img", "input", "meta", "br", "hr", "link", "source", "wbr"})


@dataclass
class Page:
    """What a browser would find in an HTML page, read with the standard library's parser.

    :param imgs: attributes of each ``<img>``.
    :param links: ``href`` of each ``<a>``.
    :param scripts: attributes of each ``<script>``.
    :param handlers: ``(tag, attribute)`` of every event handler attribute (``on...``).
    :param text: the text content.
    :param data: ``data-*`` attributes of every element, as ``(tag, name, value)``.
    :param count_texts: text of the elements marked ``data-count=<name>``, by name.
    """

    imgs: list[dict[str, str | None]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    scripts: list[dict[str, str | None]] = field(default_factory=list)
    handlers: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    data: list[tuple[str, str, str | None]] = field(default_factory=list)
    count_texts: dict[str, list[str]] = field(default_factory=dict)

    def data_values(self, name: str) -> list[str | None]:
        """Values of ``data-<name>`` attributes, in document order."""
        return [value for _, attr, value in self.data if attr == f"data-{name}"]

    def counts(self, name: str) -> list[int]:
        """The numbers shown in elements marked ``data-count=<name>``, in document order."""
        return [int(value) for value in self.count_texts.get(name, [])]


def parse_page(html: str) -> Page:
    """Parse ``html`` into a :class:`Page`."""
    from html.parser import HTMLParser

    page = Page()
    text: list[str] = []
    open_counts: list[str | None] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            values = dict(attrs)
            if tag == "img":
                page.imgs.append(values)
            if tag == "a" and values.get("href"):
                page.links.append(values["href"])
            if tag == "script":
                page.scripts.append(values)
            for name, value in attrs:
                if name.startswith("on"):
                    page.handlers.append((tag, name))
                if name.startswith("data-"):
                    page.data.append((tag, name, value))
            if tag not in _VOID_TAGS:
                open_counts.append(values.get("data-count"))

        def handle_endtag(self, tag):
            if tag not in _VOID_TAGS and open_counts:
                open_counts.pop()

        def handle_data(self, data):
            text.append(data)
            if open_counts and open_counts[-1]:
                page.count_texts.setdefault(open_counts[-1], []).append(data.strip())

    Parser(convert_charrefs=True).feed(html)
    page.text = "".join(text)
    return page
