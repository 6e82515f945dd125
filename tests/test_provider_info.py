"""The package is an Airflow provider: discovered from its entry point, with the `azerion` connection type."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_azerion import __version__
from airflow_provider_azerion.get_provider_info import get_provider_info

HOOK_CLASS = "airflow_provider_azerion.hooks.azerion.AzerionHook"


def _providers_manager():
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


def test_provider_info_validates_against_airflows_own_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_points_at_get_provider_info():
    (ep,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_azerion")
    ]
    assert ep.load() is get_provider_info


def test_provider_info_names_the_hook_and_operator_modules_which_import():
    info = get_provider_info()
    modules = [
        m for section in ("hooks", "operators") for entry in info[section] for m in entry["python-modules"]
    ]
    assert "airflow_provider_azerion.hooks.azerion" in modules
    assert "airflow_provider_azerion.operators.image_generation" in modules
    for module in modules:
        __import__(module)


def test_airflow_providers_list_shows_the_package():
    out = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    listed = {p["package_name"]: p["version"] for p in json.loads(out[out.index("[") :])}
    assert listed["airflow-provider-azerion"] == __version__


def test_providers_manager_resolves_azerion_hook_without_provider_deprecation_warnings():
    from airflow.exceptions import AirflowProviderDeprecationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hook_info = _providers_manager().hooks["azerion"]
    assert hook_info is not None
    assert hook_info.hook_class_name == HOOK_CLASS
    assert hook_info.hook_name == "Azerion Intelligence"
    assert hook_info.connection_testable
    assert not [w for w in caught if issubclass(w.category, AirflowProviderDeprecationWarning)]


def test_connection_form_hides_and_relabels_fields_as_declared():
    behaviour = _providers_manager().field_behaviours["azerion"]
    assert sorted(behaviour["hidden_fields"]) == ["login", "port", "schema"]
    assert behaviour["relabeling"]["password"] == "API key"
    assert behaviour["placeholders"]["host"] == "https://api.azerion.ai/v1"


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ("connect_timeout", 10),
        ("read_timeout", 300),
        ("max_attempts", 5),
        ("backoff_factor", 1.0),
        ("max_retry_wait", 60),
        ("retry_on_timeout", False),
        ("max_download_bytes", 134217728),
        ("pool_maxsize", 32),
    ],
)
def test_connection_form_widgets_cover_every_extra_the_hook_reads(field, default):
    from airflow_provider_azerion.hooks.azerion import DEFAULT_SETTINGS

    widgets = _providers_manager().connection_form_widgets
    widget = widgets[f"extra__azerion__{field}"]
    assert widget.hook_class_name == HOOK_CLASS
    assert widget.field["value"] == default == DEFAULT_SETTINGS[field]
    assert set(DEFAULT_SETTINGS) == {
        k.rsplit("__", 1)[1] for k in widgets if k.startswith("extra__azerion__")
    }


def test_the_images_tab_setting_is_declared_for_airflow_config(tmp_path, monkeypatch):
    airflow_cli = str(Path(sys.executable).parent / "airflow")
    listed = subprocess.run(
        [airflow_cli, "config", "list", "--section", "azerion", "--include-descriptions"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    assert "thumbnail_cache_dir" in listed
    assert "Images tab keeps the thumbnails" in listed

    monkeypatch.setenv("AIRFLOW__AZERION__THUMBNAIL_CACHE_DIR", str(tmp_path))
    value = subprocess.run(
        [airflow_cli, "config", "get-value", "azerion", "thumbnail_cache_dir"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    assert value.strip() == str(tmp_path)
