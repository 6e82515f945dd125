"""Errors come in Azerion's shape, with the status, code and param the real API would use."""

from __future__ import annotations

import pytest
import requests

from tests.emulator.conftest import TIMEOUT, Api


def assert_error(response: requests.Response, status: int, code: str, param: str | None = None) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param", "status_code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert (error["status_code"], error["code"], error["param"]) == (status, code, param)
    return error


@pytest.mark.parametrize("path", ["/models", "/images/generations"])
def test_missing_key_is_a_401(api: Api, path):
    response = requests.request(
        "GET" if path == "/models" else "POST",
        api.server.base_url + path,
        json={"model": "stable-image-core-1.1", "prompt": "cat"},
        timeout=TIMEOUT,
    )

    error = assert_error(response, 401, "invalid_api_key")
    assert error["type"] == "authentication_error"


def test_wrong_key_is_a_401_that_does_not_echo_the_key(api: Api):
    presented = "sk-wrong-key-0123456789"
    api.session.headers["Authorization"] = f"Bearer {presented}"

    response = api.generate()

    assert_error(response, 401, "invalid_api_key")
    assert presented not in response.text
    assert "0123456789" not in response.text


def test_malformed_json_is_a_400(api: Api):
    response = api.post(
        "/images/generations", data=b'{"model": "stable', headers={"Content-Type": "application/json"}
    )

    assert_error(response, 400, "invalid_json")


def test_json_that_is_not_an_object_is_a_400(api: Api):
    assert_error(api.post("/images/generations", json=["cat"]), 400, "invalid_json")


@pytest.mark.parametrize("missing", ["model", "prompt"])
def test_missing_required_parameter_is_a_400_naming_it(api: Api, missing):
    body = {"model": "stable-image-core-1.1", "prompt": "cat"}
    del body[missing]

    response = api.post("/images/generations", json=body)

    assert_error(response, 400, "missing_required_parameter", missing)


def test_prompt_must_be_a_string(api: Api):
    assert_error(api.generate(prompt=42), 400, "invalid_type", "prompt")


def test_empty_prompt_is_a_400(api: Api):
    assert_error(api.generate(prompt=""), 400, "empty_string", "prompt")


def test_prompt_of_4000_characters_is_accepted(api: Api):
    assert api.generate(prompt="a" * 4000, size="16x16").status_code == 200


def test_prompt_of_4001_characters_is_a_400(api: Api):
    error = assert_error(api.generate(prompt="a" * 4001), 400, "string_above_max_length", "prompt")

    assert "4000" in error["message"]


def test_unknown_model_is_a_404_model_not_found(api: Api):
    error = assert_error(api.generate(model="dall-e-9"), 404, "model_not_found", "model")

    assert error["type"] == "invalid_request_error"
    assert "The model `dall-e-9` does not exist" in error["message"]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("response_format", "png"),
        ("size", "big"),
        ("size", "8x8"),
        ("size", "5000x100"),
        ("size", "2K"),  # Named sizes are Seedream's only.
        ("n", 0),
        ("n", 11),
        ("n", "2"),
        ("aspect_ratio", "4:3"),
        ("output_format", "gif"),
        ("seed", -1),
        ("seed", 4294967295),
    ],
)
def test_invalid_value_is_a_400_naming_the_param(api: Api, param, value):
    response = api.generate(**{param: value})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_seed_bounds_are_accepted(api: Api):
    assert api.generate(size="16x16", seed=0).status_code == 200
    assert api.generate(size="16x16", seed=4294967294).status_code == 200


def test_invalid_sequential_options_are_a_400(api: Api):
    response = api.generate(
        model="bytedance-seedream-4",
        sequential_image_generation="auto",
        sequential_image_generation_options={"max_images": 16},
    )

    assert_error(response, 400, "integer_above_max_value", "sequential_image_generation_options.max_images")


def test_unknown_route_is_a_404_in_azerion_shape(api: Api):
    assert_error(api.get("/images/edits"), 404, "unknown_url")


def test_wrong_method_is_a_405_in_azerion_shape(api: Api):
    assert_error(api.post("/models", json={}), 405, "method_not_allowed")


def test_unexpected_failure_is_a_500_in_azerion_shape(api: Api, monkeypatch):
    def broken(name: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(api.server.state.files, "get", broken)

    response = requests.get(f"{api.server.base_url}/files/any.png", timeout=TIMEOUT)

    assert_error(response, 500, "internal_error")
    assert response.headers["x-request-id"]
