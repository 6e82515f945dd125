"""Faithfulness: the official OpenAI SDK works against the emulator as it would against Azerion."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from airflow_provider_azerion.emulator import EmulatorServer
from tests.emulator.conftest import decode_image, wait_until


@pytest.fixture
def client(azerion_emulator: EmulatorServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=azerion_emulator.base_url, api_key=azerion_emulator.api_key, max_retries=0, timeout=10
    ) as client:
        yield client


def test_sdk_generates_a_decodable_image(client: openai.OpenAI):
    result = client.images.generate(
        model="stable-image-core-1.1", prompt="cat", response_format="b64_json", size="64x64"
    )

    assert result.data is not None
    b64 = result.data[0].b64_json
    assert b64 is not None
    assert base64.b64decode(b64).startswith(b"\xff\xd8\xff")
    assert decode_image(b64).size == (64, 64)
    assert result.usage is not None
    assert result.usage.total_tokens == 0


def test_sdk_lists_the_models(client: openai.OpenAI):
    ids = {model.id for model in client.models.list()}

    assert {"stable-image-core-1.1", "bytedance-seedream-4"} <= ids


def test_sdk_raises_authentication_error_on_a_wrong_key(azerion_emulator: EmulatorServer):
    with (
        openai.OpenAI(
            base_url=azerion_emulator.base_url, api_key="wrong", max_retries=0, timeout=10
        ) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.models.list()
    assert caught.value.code == "invalid_api_key"


def test_sdk_raises_not_found_on_an_unknown_model(client: openai.OpenAI):
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.generate(model="dall-e-9", prompt="cat")

    assert caught.value.code == "model_not_found"
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")


def test_sdk_raises_bad_request_with_the_param(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="stable-image-core-1.1", prompt="x" * 4001)

    assert caught.value.param == "prompt"


def test_sdk_raises_rate_limit_error_beyond_the_cap(azerion_emulator: EmulatorServer, client: openai.OpenAI):
    azerion_emulator.latency = 1.0
    azerion_emulator.max_concurrency = 1

    def generate() -> object:
        return client.images.generate(model="stable-image-core-1.1", prompt="cat", size="16x16")

    with ThreadPoolExecutor(1) as pool:
        admitted = pool.submit(generate)
        wait_until(lambda: azerion_emulator.in_flight == 1)
        with pytest.raises(openai.RateLimitError) as caught:
            generate()
        admitted.result(timeout=10)
    assert caught.value.response.headers["retry-after-ms"] == "1000"


def test_sdk_sees_a_dropped_connection_as_a_connection_error(
    azerion_emulator: EmulatorServer, client: openai.OpenAI
):
    azerion_emulator.faults.script(["drop"])

    with pytest.raises(openai.APIConnectionError):
        client.images.generate(model="stable-image-core-1.1", prompt="cat", size="16x16")
