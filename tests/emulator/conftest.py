"""Helpers for the emulator's own tests: a small HTTP client bound to the emulator under test."""

from __future__ import annotations

import base64
import io
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from PIL import Image

from airflow_provider_azerion.emulator import EmulatorServer

TIMEOUT = 10


class Api:
    """Sends authenticated requests to an emulator, with a timeout on every call."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {server.api_key}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.get(self.server.base_url + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.post(self.server.base_url + path, **kwargs)

    def generate(self, **body: Any) -> requests.Response:
        """POST a generation; ``model`` and ``prompt`` default to a small Stable Image Core call."""
        body.setdefault("model", "stable-image-core-1.1")
        body.setdefault("prompt", "a red fox in the snow")
        return self.post("/images/generations", json=body)

    def result_link(self, **body: Any) -> str:
        """Generate one image as a ``url`` response and return its link."""
        body.setdefault("size", "64x64")
        response = self.generate(response_format="url", **body)
        assert response.status_code == 200, response.text
        return str(response.json()["data"][0]["url"])


@pytest.fixture
def api(azerion_emulator: EmulatorServer) -> Iterator[Api]:
    """An authenticated client for the function-scoped ``azerion_emulator`` fixture."""
    client = Api(azerion_emulator)
    yield client
    client.session.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def decode_image(b64: str) -> Image.Image:
    """Decode a ``b64_json`` value into an opened (and fully loaded) image."""
    return open_image(base64.b64decode(b64, validate=True))


def open_image(content: bytes) -> Image.Image:
    """Open image bytes, failing if they are not a complete image."""
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def storage_error(response: requests.Response, status: int) -> dict[str, str]:
    """Check an object-storage XML error and return its fields (``Code``, ``Message``...)."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/xml"
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.content)  # noqa: S314 - the emulator's own output
    assert root.tag == "Error"
    fields = {child.tag: child.text or "" for child in root}
    assert fields["RequestId"] == response.headers["x-tos-request-id"]
    return fields
