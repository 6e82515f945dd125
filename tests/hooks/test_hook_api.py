"""AzerionHook against the emulator over real HTTP: calls, results, validation."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pendulum
import pytest

from airflow_provider_azerion.exceptions import (
    AzerionAuthenticationError,
    AzerionBadRequestError,
    AzerionConnectionError,
    AzerionDownloadError,
)
from airflow_provider_azerion.models import ImageGenerationResponse

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def test_list_models_returns_model_entries(make_hook):
    ids = {m["id"] for m in make_hook().list_models()}
    assert {"stable-image-core-1.1", "bytedance-seedream-4"} <= ids


def test_generate_images_returns_typed_response(make_hook):
    result = make_hook().generate_images("a red fox", model="stable-image-core-1.1", size="64x64")
    assert isinstance(result, ImageGenerationResponse)
    assert isinstance(result.created, pendulum.DateTime)
    assert len(result.images) == 1
    assert base64.b64decode(result.images[0].b64_json).startswith(JPEG_MAGIC)
    assert result.images[0].revised_prompt is None  # sent only when the API revised the prompt
    assert result.usage.total_tokens >= 0
    assert result.usage.raw is not None
    assert result.request_id


def test_extra_parameters_pass_through_untouched(make_hook):
    result = make_hook().generate_images(
        "a lighthouse", model="stable-image-core-1.1", size="64x64", output_format="png", n=3, seed=7
    )
    assert len(result.images) == 3
    assert all(base64.b64decode(i.b64_json).startswith(PNG_MAGIC) for i in result.images)


def test_response_repr_never_contains_base64(make_hook):
    result = make_hook().generate_images("a cat", model="stable-image-core-1.1", size="64x64")
    assert result.images[0].b64_json[:40] not in repr(result)


def test_url_format_and_download(make_hook):
    hook = make_hook()
    result = hook.generate_images(
        "a boat", model="bytedance-seedream-4", size="512x512", response_format="url"
    )
    data = hook.download_image(result.images[0].url)
    assert data[:3] == JPEG_MAGIC or data.startswith(PNG_MAGIC)


def test_download_refuses_images_over_the_size_cap(make_hook):
    hook = make_hook(max_download_bytes=100)
    result = hook.generate_images(
        "a boat", model="bytedance-seedream-4", size="512x512", response_format="url"
    )
    with pytest.raises(AzerionDownloadError) as err:
        hook.download_image(result.images[0].url)
    assert "max_download_bytes=100" in str(err.value)


class _HeaderRecorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self):
        type(self).seen.append(dict(self.headers))
        body = PNG_MAGIC + b"\x00" * 64
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def other_origin():
    """A second HTTP server on loopback, standing for a CDN that serves result images."""
    _HeaderRecorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HeaderRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _HeaderRecorder.seen
    server.shutdown()
    server.server_close()


def test_download_from_another_origin_never_sends_the_key(make_hook, other_origin):
    url, seen = other_origin
    data = make_hook().download_image(f"{url}/images/1.png?sig=abc")
    assert data.startswith(PNG_MAGIC)
    assert "Authorization" not in seen[0]


def test_api_requests_carry_the_bearer_key(emulator, make_hook):
    emulator.api_key = "wrong-on-purpose"
    with pytest.raises(AzerionAuthenticationError):
        make_hook().list_models()


def test_prompt_of_exactly_4000_characters_is_accepted(make_hook):
    result = make_hook().generate_images("x" * 4000, model="stable-image-core-1.1", size="64x64")
    assert len(result.images) == 1


def test_unknown_model_is_a_bad_request_with_the_servers_words(make_hook):
    with pytest.raises(AzerionBadRequestError) as err:
        make_hook().generate_images("a cat", model="no-such-model")
    assert err.value.status_code == 404
    assert str(err.value).startswith("Azerion API 404 model_not_found: ")
    assert "no-such-model" in str(err.value)


def test_server_400_surfaces_its_message_and_param(emulator, make_hook):
    with pytest.raises(AzerionBadRequestError) as err:
        make_hook().generate_images("a cat", model="stable-image-core-1.1", size="huge")
    assert err.value.status_code == 400
    assert err.value.param == "size"
    assert "size" in str(err.value)
    assert emulator.generation_count == 1


def test_test_connection_succeeds_against_the_emulator(make_hook):
    ok, message = make_hook().test_connection()
    assert ok
    assert "model(s) available" in message


def test_test_connection_reports_a_wrong_key_without_showing_it(emulator, make_hook):
    from tests.hooks.conftest import SECRET_KEY

    emulator.api_key = "the-server-wants-another-key"
    ok, message = make_hook().test_connection()
    assert not ok
    assert "401" in message
    assert SECRET_KEY not in message


def test_test_connection_reports_an_unreachable_host_at_once(monkeypatch):
    from airflow_provider_azerion.hooks.azerion import AzerionHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_AZ_DOWN", '{"conn_type":"azerion","host":"http://127.0.0.1:9","password":"k-123456"}'
    )
    ok, message = AzerionHook("az_down").test_connection()
    assert not ok
    assert "nothing was sent" in message
    assert "127.0.0.1:9" in message
    assert "k-123456" not in message


def test_test_connection_reports_a_bad_url(monkeypatch):
    from airflow_provider_azerion.hooks.azerion import AzerionHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_AZ_FTP", '{"conn_type":"azerion","host":"ftp://x","password":"k-123456"}'
    )
    ok, message = AzerionHook("az_ftp").test_connection()
    assert not ok
    assert "not an http(s) URL" in message


def test_sixteen_threads_share_one_hook(emulator, make_hook):
    emulator.latency = 0.05
    hook = make_hook()

    def four(worker):
        return [
            len(hook.generate_images(f"w{worker} p{i}", model="stable-image-core-1.1", size="32x32").images)
            for i in range(4)
        ]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(four, range(16)))
    assert results == [[1, 1, 1, 1]] * 16
    assert emulator.generation_count == 64
    assert emulator.peak_concurrency > 1


def test_dropped_connection_before_sending_is_never_a_billing_risk(monkeypatch):
    """A refused connection never carried the request: the error says nothing was sent."""
    from airflow_provider_azerion.hooks.azerion import AzerionHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_AZ_REFUSED", '{"conn_type":"azerion","host":"http://127.0.0.1:9","password":"k-123456"}'
    )
    with pytest.raises(AzerionConnectionError) as err:
        AzerionHook("az_refused", max_attempts=2, backoff_factor=0.01).generate_images("a", model="m")
    assert err.value.request_sent is False
    assert "nothing was sent" in str(err.value)
