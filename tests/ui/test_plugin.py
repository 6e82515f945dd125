"""The plugin is found by Airflow, shows its tabs where the issue wants them, and loads lightly."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

from airflow_provider_azerion.plugins.images import AzerionImagesPlugin

PLUGIN_CLASS = "airflow_provider_azerion.plugins.images.AzerionImagesPlugin"


def test_the_airflow_plugins_entry_point_names_the_plugin():
    (entry,) = [ep for ep in entry_points(group="airflow.plugins") if ep.name == "azerion_images"]

    assert entry.load() is AzerionImagesPlugin


def test_provider_info_lists_the_plugin_too():
    from airflow_provider_azerion.get_provider_info import get_provider_info

    assert get_provider_info()["plugins"] == [{"name": "azerion_images", "plugin-class": PLUGIN_CLASS}]


def test_airflow_serves_the_plugin_with_its_two_tabs_and_its_app(api):
    response = api.get("/api/v2/plugins", params={"limit": 100})

    assert response.status_code == 200
    (plugin,) = [p for p in response.json()["plugins"] if p["name"] == "azerion_images"]
    views = {view["destination"]: view for view in plugin["external_views"]}
    assert set(views) == {"task_instance", "dag_run"}
    assert {view["url_route"] for view in views.values()} == {"azerion-images", "azerion-run-images"}
    assert all(view["name"] == "Images" for view in views.values())
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/azerion"]
    assert "azerion" not in str(api.get("/api/v2/plugins/importErrors").json())


def test_plugin_attributes_work_from_the_class_and_from_an_instance():
    # Airflow reads entry point plugins from instances and provider-info plugins from the class.
    assert AzerionImagesPlugin.fastapi_apps is AzerionImagesPlugin().fastapi_apps
    assert AzerionImagesPlugin.external_views is AzerionImagesPlugin().external_views
    assert len(AzerionImagesPlugin.external_views) == 2


def test_loading_the_plugin_imports_neither_fastapi_nor_pillow():
    code = (
        "import sys, airflow.plugins_manager\n"
        "before = set(sys.modules)\n"
        "from airflow_provider_azerion.plugins.images import AzerionImagesPlugin\n"
        "AzerionImagesPlugin.external_views\n"
        "new = set(sys.modules) - before\n"
        "print(sorted(m for m in new if m.split('.')[0] in ('fastapi', 'starlette', 'PIL', 'uvicorn')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )

    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_importing_the_plugin_modules_starts_no_thread_and_makes_no_folder(tmp_path):
    cache_dir = tmp_path / "thumbnails"
    code = (
        "import importlib, pkgutil, threading\n"
        "import airflow_provider_azerion.plugins as package\n"
        "before = {t.ident for t in threading.enumerate()}\n"
        "for module in pkgutil.iter_modules(package.__path__):\n"
        "    importlib.import_module(f'{package.__name__}.{module.name}')\n"
        "print(sorted(t.name for t in threading.enumerate() if t.ident not in before))\n"
    )
    env = {**os.environ, "AIRFLOW__AZERION__THUMBNAIL_CACHE_DIR": str(cache_dir)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env
    )

    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert not cache_dir.exists()
