"""Proxy and CA-bundle settings come from the environment, as with requests, read once per origin.

requests reads ``*_proxy``, ``no_proxy`` and ``REQUESTS_CA_BUNDLE`` on every request by scanning
the whole environment; the hook's session keeps the result per origin. These tests show the
result is the one requests itself gives, and that real calls go through (or around) a forward
proxy on loopback as the environment says.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_azerion.exceptions import AzerionCancelledError
from airflow_provider_azerion.hooks.session import session_class
from tests.hooks.conftest import SECRET_KEY

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding"}


class _ForwardProxy(ThreadingHTTPServer):
    """A plain-HTTP forward proxy on 127.0.0.1 that records ``(method, absolute URL)`` per request."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address):
        pass  # a client that hung up (a cancelled call) is expected


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        server: _ForwardProxy = self.server  # type: ignore[assignment]
        server.seen.append((self.command, self.path))
        target = urlsplit(self.path)  # absolute form: http://host:port/path?query
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=15)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in _HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            upstream.close()

    do_GET = do_POST = _forward

    def log_message(self, format, *args):
        pass


@pytest.fixture
def proxy():
    server = _ForwardProxy()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _clear_proxy_environment(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def _generate_and_download(hook, count: int = 2) -> None:
    for index in range(count):
        result = hook.generate_images(
            f"proxied prompt {index}", model="bytedance-seedream-4", size="512x512", response_format="url"
        )
        assert hook.download_image(result.images[0].url)[:3] == b"\xff\xd8\xff"  # a JPEG


def test_calls_and_downloads_go_through_the_proxy_of_the_environment(emulator, make_hook, proxy, monkeypatch):
    _clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    _generate_and_download(make_hook())

    api, files = urlsplit(emulator.base_url).netloc, urlsplit(emulator.files_url).netloc
    assert [(method, urlsplit(url).netloc) for method, url in proxy.seen] == [
        ("POST", api),
        ("GET", files),
        ("POST", api),
        ("GET", files),
    ]


def test_no_proxy_is_honoured_per_origin(emulator, make_hook, proxy, monkeypatch):
    _clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    # requests matches no_proxy on an IP address without its port, so the two origins need two
    # names: the API as "localhost", the result links as 127.0.0.1, which alone bypasses the proxy.
    api_url = emulator.base_url.replace("127.0.0.1", "localhost")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AZERION_DEFAULT",
        json.dumps({"conn_type": "azerion", "host": api_url, "password": SECRET_KEY}),
    )
    monkeypatch.setenv("NO_PROXY", urlsplit(emulator.files_url).hostname)

    _generate_and_download(make_hook())

    assert [(method, urlsplit(url).hostname) for method, url in proxy.seen] == [("POST", "localhost")] * 2


@pytest.mark.parametrize(
    "url",
    [
        "https://api.azerion.ai/v1/images/generations",
        "https://files.example.com/bucket/1.png?X-Tos-Signature=abc",
        "http://127.0.0.1:8080/v1/models",
        "http://internal.corp:9000/v1/models",
    ],
)
def test_settings_are_those_requests_itself_reads_from_the_environment(url, monkeypatch):
    _clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:3129")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.corp")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/corp-bundle.pem")
    ours, plain = session_class()(), requests.Session()

    for _ in range(2):  # the second answer comes from the cache
        assert ours.merge_environment_settings(url, {}, True, None, None) == plain.merge_environment_settings(
            url, {}, True, None, None
        )
    explicit = {"https": "http://explicit:1"}  # a call's own settings take requests' own path
    assert ours.merge_environment_settings(url, dict(explicit), True, False, None) == (
        plain.merge_environment_settings(url, dict(explicit), True, False, None)
    )


def test_cancel_stops_a_generation_in_flight_behind_a_proxy_at_once(emulator, make_hook, proxy, monkeypatch):
    _clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    emulator.latency = 8
    hook = make_hook(read_timeout=60)
    errors: list[BaseException] = []

    def generate():
        try:
            hook.generate_images("a slow cat", model="stable-image-core-1.1", size="32x32")
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=generate, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while emulator.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.seen  # the generation really went through the proxy
    started = time.monotonic()
    hook.cancel()
    thread.join(10)
    assert time.monotonic() - started < 2  # not the emulator's latency, nor read_timeout
    assert isinstance(errors[0], AzerionCancelledError)
    assert errors[0].request_sent
