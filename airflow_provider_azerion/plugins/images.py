"""``AzerionImagesPlugin``: the Images tabs of task instances and DAG runs in the Airflow UI.

Airflow loads plugins in every process (scheduler, DAG processor, triggerer, workers, API
server), so this module imports nothing but Airflow's plugin base class. The two attributes only
the API server reads are built when first read: ``fastapi_apps`` (the FastAPI app, in
:mod:`airflow_provider_azerion.plugins.routes`) and ``external_views`` (the tabs, whose links need
the API server's base path from ``[api] base_url``).

Airflow finds the plugin through the ``airflow.plugins`` entry point of the package (and, with
``[core] lazy_discover_providers = False``, through the provider info's ``plugins`` too).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

#: Where the plugin's app is mounted on the API server (under its base path).
URL_PREFIX = "/azerion"
#: The tabs' routes in the UI: ``.../plugin/<url_route>``.
TASK_INSTANCE_ROUTE = "azerion-images"
DAG_RUN_ROUTE = "azerion-run-images"
_ICON_PATH = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='{color}' "
    "stroke-width='2' stroke-linecap='round' stroke-linejoin='round'><rect x='3' y='3' width='18' "
    "height='18' rx='2'/><circle cx='9' cy='9' r='2'/><path d='m21 15-3.1-3.1a2 2 0 0 0-2.8 0L6 21'/></svg>"
)


def _icon(color: str) -> str:
    from urllib.parse import quote

    return "data:image/svg+xml," + quote(_ICON_PATH.format(color=color))


def api_base_path() -> str:
    """The path of ``[api] base_url`` without its trailing slash (``""`` at the root).

    The UI puts a tab's ``href`` into its frame as it is, so the href must carry the base path
    the API server is reached under (its session cookie is scoped to that path, too).
    """
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def external_views() -> list[dict[str, Any]]:
    """The Images tabs: one on every task instance page, one on every DAG run page.

    On a task instance that is not mapped, the UI leaves ``{MAP_INDEX}`` in the URL as it is;
    the app reads it as -1.
    """
    base = api_base_path() + URL_PREFIX + "/dags/{DAG_ID}/runs/{RUN_ID}"
    common = {"name": "Images", "icon": _icon("#4a5568"), "icon_dark_mode": _icon("#e2e8f0")}
    return [
        {
            **common,
            "href": base + "/tasks/{TASK_ID}/{MAP_INDEX}/images",
            "destination": "task_instance",
            "url_route": TASK_INSTANCE_ROUTE,
        },
        {**common, "href": base + "/images", "destination": "dag_run", "url_route": DAG_RUN_ROUTE},
    ]


def fastapi_apps() -> list[dict[str, Any]]:
    """The app serving the tabs' pages, images, thumbnails and sidecars."""
    from airflow_provider_azerion.plugins.routes import create_app

    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Azerion images"}]


class _BuiltWhenRead:
    """A class attribute built by ``build()`` the first time it is read, then kept.

    It works on the class and on its instances alike (Airflow reads plugin attributes from
    both), and keeps returning the same object, which Airflow may edit in place.
    """

    def __init__(self, build: Callable[[], list[Any]]) -> None:
        self._build = build
        self._value: list[Any] | None = None
        self._lock = threading.Lock()

    def __get__(self, instance: object, owner: type | None = None) -> list[Any]:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value


class AzerionImagesPlugin(AirflowPlugin):
    """Adds an **Images** tab to task instances and DAG runs, showing what Azerion tasks stored.

    The tab lists each image of an ``ImageGenerationOperator`` task instance's folder with its
    thumbnail, prompt and metadata, for any state (failed and running tries included). Thumbnails
    need Pillow on the API server: ``pip install "airflow-provider-azerion[ui]"``.
    """

    name = "azerion_images"
    fastapi_apps = _BuiltWhenRead(fastapi_apps)  # type: ignore[assignment]
    external_views = _BuiltWhenRead(external_views)  # type: ignore[assignment]
