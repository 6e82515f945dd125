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
        ("style", 1),
        ("negative_prompt", ["rain"]),
        ("style_preset", 7),
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


MAX_IMAGES = "sequential_image_generation_options.max_images"


def auto(max_images: object) -> dict[str, object]:
    """Seedream parameters asking for sequential generation of ``max_images``."""
    return {
        "sequential_image_generation": "auto",
        "sequential_image_generation_options": {"max_images": max_images},
    }


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"size": "64x64"}, "invalid_value", "size"),
        ({"size": "2k"}, "invalid_value", "size"),
        ({"size": "4K"}, "invalid_value", "size"),
        ({"size": "2048x2048"}, "invalid_value", "size"),
        ({"size": 512}, "invalid_value", "size"),
        ({"watermark": "false"}, "invalid_type", "watermark"),
        ({"watermark": 0}, "invalid_type", "watermark"),
        ({"image": 42}, "invalid_type", "image"),
        ({"image": ["https://example.com/a.png", 7]}, "invalid_type", "image"),
        ({"image": {"url": "https://example.com/a.png"}}, "invalid_type", "image"),
        ({"image": []}, "invalid_value", "image"),
        ({"image": ""}, "invalid_value", "image"),
        ({"sequential_image_generation": "enabled"}, "invalid_value", "sequential_image_generation"),
        ({"sequential_image_generation": True}, "invalid_value", "sequential_image_generation"),
        ({"sequential_image_generation_options": 4}, "invalid_type", "sequential_image_generation_options"),
        (
            auto(0),
            "integer_below_min_value",
            MAX_IMAGES,
        ),
        (
            auto(16),
            "integer_above_max_value",
            MAX_IMAGES,
        ),
        (
            auto("4"),
            "invalid_type",
            MAX_IMAGES,
        ),
        ({"sequential_image_generation_options": {"max_images": 16}}, "integer_above_max_value", MAX_IMAGES),
        ({"response_format": "png"}, "invalid_value", "response_format"),
    ],
)
@pytest.mark.parametrize("model", ["bytedance-seedream-4", "bytedance-seedream-4-5"])
def test_seedream_parameter_rules_answer_400_naming_the_param(api: Api, model, params, code, param):
    error = assert_error(api.generate(model=model, **params), 400, code, param)

    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "image",
    [
        "reference.png",
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        ["https://example.com/a.png", "data:text/plain;base64,aGk="],
    ],
)
def test_reference_image_that_is_no_fetchable_url_is_a_422(api: Api, image):
    error = assert_error(
        api.generate(model="bytedance-seedream-4", image=image), 422, "invalid_image_url", "image"
    )

    assert error["type"] == "invalid_request_error"


def test_a_422_is_only_sent_for_a_request_without_400_problems(api: Api):
    response = api.generate(model="bytedance-seedream-4", image="reference.png", size="64x64")

    assert_error(response, 400, "invalid_value", "size")


def test_forbidden_model_is_a_403_permission_error(api: Api):
    api.server.forbidden_models = {"bytedance-seedream-4"}

    error = assert_error(api.generate(model="bytedance-seedream-4"), 403, "model_not_allowed", "model")

    assert error["type"] == "permission_error"
    assert api.generate(size="64x64").status_code == 200  # Other models still work.


@pytest.mark.azerion_emulator(forbidden_models=("stable-image-core-1.1",))
def test_forbidden_models_can_be_set_when_the_server_is_created(api: Api):
    assert api.server.forbidden_models == frozenset({"stable-image-core-1.1"})
    assert api.generate().status_code == 403
    assert "stable-image-core-1.1" in {model["id"] for model in api.get("/models").json()["data"]}


def test_forbidden_model_is_checked_before_the_parameters(api: Api):
    api.server.forbidden_models = ["bytedance-seedream-4"]

    assert_error(api.generate(model="bytedance-seedream-4", size="64x64"), 403, "model_not_allowed", "model")


def test_unknown_route_is_a_404_in_azerion_shape(api: Api):
    assert_error(api.get("/images/edits"), 404, "unknown_url")


def test_wrong_method_is_a_405_in_azerion_shape(api: Api):
    assert_error(api.post("/models", json={}), 405, "method_not_allowed")


def test_unexpected_failure_is_a_500_in_azerion_shape(api: Api, monkeypatch):
    def broken(endpoint: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(api.server.state.faults, "next_fault", broken)

    response = api.get("/models")

    assert_error(response, 500, "internal_error")
    assert response.headers["x-request-id"]
