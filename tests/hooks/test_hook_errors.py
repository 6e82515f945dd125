"""Errors that point at the real mistake: a wrong base URL, or a model the key cannot find."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from airflow_provider_azerion.exceptions import AzerionBadRequestError, AzerionConfigurationError
from tests.hooks.conftest import SECRET_KEY


def _point_at(monkeypatch, host: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AZERION_DEFAULT",
        json.dumps({"conn_type": "azerion", "host": host, "password": SECRET_KEY}),
    )


def _assert_blames_the_base_url(err: BaseException, shown_base_url: str) -> None:
    assert isinstance(err, AzerionBadRequestError)  # still final: the same request fails the same way
    assert isinstance(err, AzerionConfigurationError)
    assert "base URL looks wrong" in str(err)
    assert shown_base_url in str(err)
    assert "Fix the request parameters" not in str(err)


def test_a_base_url_on_another_service_answering_405_blames_the_base_url(emulator, make_hook, monkeypatch):
    # The result store (object storage) refuses POST with a 405, as any other web service would.
    files = urlsplit(emulator.files_url)
    _point_at(monkeypatch, f"http://someone:hunter2@{files.netloc}/v1")

    with pytest.raises(AzerionBadRequestError) as err:
        make_hook().generate_images("a cat", model="stable-image-core-1.1", size="32x32")

    assert err.value.status_code == 405
    _assert_blames_the_base_url(err.value, f"{emulator.files_url}/v1")
    assert "hunter2" not in str(err.value)  # shown without its user info


@pytest.mark.parametrize(
    "call",
    [
        lambda hook: hook.generate_images("a cat", model="stable-image-core-1.1", size="32x32"),
        lambda hook: hook.list_models(),
    ],
    ids=["generate", "list_models"],
)
def test_the_apis_unknown_url_blames_the_base_url(emulator, make_hook, monkeypatch, call):
    _point_at(monkeypatch, f"{emulator.url}/v2")
    hook = make_hook()

    with pytest.raises(AzerionBadRequestError) as err:
        call(hook)

    assert (err.value.status_code, err.value.code) == (404, "unknown_url")
    _assert_blames_the_base_url(err.value, f"{emulator.url}/v2")


def test_model_not_found_lists_the_models_the_key_can_use(emulator, make_hook):
    with pytest.raises(AzerionBadRequestError) as err:
        make_hook().generate_images("a cat", model="stable-image-core-9")

    assert err.value.code == "model_not_found"
    assert "Models listed for this key: " in str(err.value)
    assert "stable-image-core-1.1" in str(err.value)
    assert "bytedance-seedream-4" in str(err.value)
    assert "base URL" not in str(err.value)
    assert len(emulator.requests_to("/models")) == 1  # one listing, which bills nothing
    assert emulator.generation_count == 1


def test_model_not_found_stands_alone_when_the_listing_fails(emulator, make_hook):
    emulator.faults.script(["500"], endpoint="models")
    with pytest.raises(AzerionBadRequestError) as err:
        make_hook().generate_images("a cat", model="stable-image-core-9")

    assert str(err.value).startswith("Azerion API 404 model_not_found: ")
    assert "Models listed" not in str(err.value)
    assert len(emulator.requests_to("/models")) == 1  # a single attempt, not the retry schedule
