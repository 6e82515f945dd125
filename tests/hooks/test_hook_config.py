"""How AzerionHook finds its base URL, key and settings."""

from __future__ import annotations

import json

import pytest

from airflow_provider_azerion.exceptions import AzerionConfigurationError
from airflow_provider_azerion.hooks.azerion import DEFAULT_SETTINGS, AzerionHook, build_base_url


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "https://api.azerion.ai/v1"),
        ("", None, "https://api.azerion.ai/v1"),
        ("api.azerion.ai", None, "https://api.azerion.ai/v1"),
        ("https://api.azerion.ai", None, "https://api.azerion.ai/v1"),
        ("https://api.azerion.ai/v1/", None, "https://api.azerion.ai/v1"),
        ("https://gateway.example.com/azerion/v1", None, "https://gateway.example.com/azerion/v1"),
        ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080/v1"),
        ("127.0.0.1", 8080, "http://127.0.0.1:8080/v1"),
        ("localhost:9000/v1", None, "http://localhost:9000/v1"),
    ],
)
def test_base_url_from_connection_host(host, port, expected):
    assert build_base_url(host, port) == expected


def _set_conn(monkeypatch, conn_id, **fields):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "azerion", **fields}))


def test_settings_resolve_overrides_then_extras_then_defaults(monkeypatch):
    _set_conn(monkeypatch, "az_cfg", password="k-12345", extra={"read_timeout": 42, "max_attempts": "3"})
    hook = AzerionHook("az_cfg", max_attempts=7)
    assert hook.settings["max_attempts"] == 7  # override beats extra
    assert hook.settings["read_timeout"] == 42.0  # extra beats default
    assert hook.settings["connect_timeout"] == DEFAULT_SETTINGS["connect_timeout"]


def test_prefixed_extras_from_older_connection_forms_are_read(monkeypatch):
    _set_conn(monkeypatch, "az_old", password="k-12345", extra={"extra__azerion__retry_on_timeout": "true"})
    assert AzerionHook("az_old").settings["retry_on_timeout"] is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[(True, True), ("TRUE", True), (" yes ", True), ("On", True), ("1", True), (1, True)],
        *[(False, False), ("false", False), ("No", False), ("OFF", False), ("0", False), (0, False)],
    ],
)
def test_boolean_settings_accept_the_usual_spellings(monkeypatch, raw, expected):
    _set_conn(monkeypatch, "az_bool", password="k-12345", extra={"retry_on_timeout": raw})
    assert AzerionHook("az_bool").settings["retry_on_timeout"] is expected


@pytest.mark.parametrize("raw", ["ture", "flase", "enabled", "2", "y", 2])
def test_a_misspelt_boolean_setting_is_refused_naming_it(monkeypatch, raw):
    _set_conn(monkeypatch, "az_typo", password="k-12345", extra={"retry_on_timeout": raw})
    with pytest.raises(AzerionConfigurationError) as err:
        AzerionHook("az_typo").settings  # noqa: B018 - resolving the settings is what is tested
    assert "retry_on_timeout" in str(err.value)
    assert "az_typo" in str(err.value)


def test_a_misspelt_boolean_argument_is_refused_too(monkeypatch):
    _set_conn(monkeypatch, "az_arg", password="k-12345")
    with pytest.raises(AzerionConfigurationError, match="retry_on_timeout='ture'"):
        AzerionHook("az_arg", retry_on_timeout="ture").settings  # noqa: B018


def test_key_falls_back_to_env_when_connection_has_no_password(monkeypatch):
    _set_conn(monkeypatch, "az_nopw", host="https://api.azerion.ai/v1")
    monkeypatch.setenv("AZERION_API_KEY", "env-key-123456")
    assert AzerionHook("az_nopw")._config[1] == "env-key-123456"


def test_missing_connection_uses_env_key_and_public_url(monkeypatch):
    monkeypatch.setenv("AZERION_API_KEY", "env-key-123456")
    hook = AzerionHook("az_does_not_exist")
    assert hook.base_url == "https://api.azerion.ai/v1"


def test_connection_uri_with_encoded_url_host(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AZ_URI", "azerion://:k-uri-12345@http%3A%2F%2F127.0.0.1%3A8080%2Fv1")
    assert AzerionHook("az_uri").base_url == "http://127.0.0.1:8080/v1"


def test_repr_names_the_connection_not_the_key(monkeypatch):
    _set_conn(monkeypatch, "az_repr", password="sk-do-not-show-me")
    hook = AzerionHook("az_repr")
    hook.session  # noqa: B018 - build the session so its auth object exists
    assert "sk-do-not-show-me" not in repr(hook)
    assert "sk-do-not-show-me" not in repr(hook.session.auth)


def test_user_agent_names_the_provider_version(monkeypatch):
    from airflow_provider_azerion import __version__

    _set_conn(monkeypatch, "az_ua", password="k-12345")
    assert AzerionHook("az_ua").session.headers["User-Agent"] == f"airflow-provider-azerion/{__version__}"
