"""The hook at the API boundary, over real HTTP on loopback: every failure typed, budgeted and clean.

Each test names the behaviour it proves: which error class leaves the hook, how many requests
were sent, and that no text holds the key or a signed link's query string. The emulator serves
result links from a second origin, signed and expiring like object storage; what it cannot do
(redirect loops, unusual 4xx, broken chunked bodies) comes from :class:`ScriptedServer`.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_azerion.exceptions import (
    AzerionBadRequestError,
    AzerionCancelledError,
    AzerionConfigurationError,
    AzerionConnectionError,
    AzerionDownloadError,
    AzerionError,
    AzerionServerError,
    AzerionValidationError,
)
from airflow_provider_azerion.hooks.azerion import AzerionHook, build_base_url
from tests.hooks.conftest import SECRET_KEY

SIGNATURE_PARAM = "X-Tos-Signature"


def _url_result(hook):
    return hook.generate_images("a boat", model="bytedance-seedream-4", size="512x512", response_format="url")


def _downloads(emulator, url):
    return emulator.requests_to(urlsplit(url).path)


def _texts(err: BaseException) -> str:
    return f"{err!s} {err!r}"


# -- result links -----------------------------------------------------------------------------------


def test_result_links_live_on_another_origin_and_never_receive_the_key(emulator, make_hook):
    hook = make_hook()
    url = _url_result(hook).images[0].url
    assert urlsplit(url).port != urlsplit(emulator.base_url).port
    assert SIGNATURE_PARAM in url
    assert hook.download_image(url)[:3] == b"\xff\xd8\xff"
    (download,) = _downloads(emulator, url)
    assert download.authorization is False
    assert all(r.authorization for r in emulator.requests_to("/images/generations"))


@pytest.mark.parametrize("fault", ["expired", "403"])
def test_an_expired_or_refused_link_is_a_download_error_retryable_by_the_task(emulator, make_hook, fault):
    hook = make_hook()
    url = _url_result(hook).images[0].url
    emulator.faults.script([fault], endpoint="files")
    with pytest.raises(AzerionDownloadError) as err:
        hook.download_image(url)
    assert not isinstance(err.value, AirflowFailException)  # a task retry generates a fresh link
    assert err.value.retryable
    assert err.value.status_code == 403
    assert err.value.host == "127.0.0.1"
    assert "expired" in str(err.value)
    assert SIGNATURE_PARAM not in _texts(err.value)
    assert "check the api key" not in str(err.value).lower()
    assert len(_downloads(emulator, url)) == 1  # the same link would be refused again


def test_a_link_that_really_expired_is_refused_by_the_store(emulator, make_hook):
    emulator.url_expiry = 60
    hook = make_hook()
    url = _url_result(hook).images[0].url
    assert hook.download_image(url)  # valid for now
    emulator.clock_offset = 61  # the store's clock moves past the link's expiry
    with pytest.raises(AzerionDownloadError) as err:
        hook.download_image(url)
    assert err.value.status_code == 403


def test_an_unknown_object_is_a_download_error_not_a_bad_request(emulator, make_hook):
    hook = make_hook()
    url = _url_result(hook).images[0].url
    emulator.faults.script(["404"], endpoint="files")
    with pytest.raises(AzerionDownloadError) as err:
        hook.download_image(url)
    assert not isinstance(err.value, AzerionBadRequestError)
    assert err.value.status_code == 404
    assert len(_downloads(emulator, url)) == 1


def test_a_tampered_link_is_refused(emulator, make_hook):
    hook = make_hook()
    url = _url_result(hook).images[0].url
    tampered = url.replace(f"{SIGNATURE_PARAM}=", f"{SIGNATURE_PARAM}=00")
    with pytest.raises(AzerionDownloadError) as err:
        hook.download_image(tampered)
    assert err.value.status_code == 403
    assert SIGNATURE_PARAM not in _texts(err.value)


def test_one_budget_per_download_whatever_fails(emulator, make_hook):
    hook = make_hook(max_attempts=3)
    url = _url_result(hook).images[0].url
    emulator.faults.script(["truncated", "503", "drop", "truncated", "503", "drop"], endpoint="files")
    with pytest.raises(AzerionDownloadError):
        hook.download_image(url)
    assert len(_downloads(emulator, url)) == 3  # not max_attempts squared


def test_a_download_recovers_within_its_budget(emulator, make_hook):
    hook = make_hook(max_attempts=4)
    url = _url_result(hook).images[0].url
    emulator.faults.script(["drop", "truncated", "503"], endpoint="files")
    assert hook.download_image(url)[:3] == b"\xff\xd8\xff"
    assert len(_downloads(emulator, url)) == 4


def test_signed_query_strings_never_reach_errors_or_logs(emulator, make_hook, caplog):
    import structlog

    hook = make_hook(max_attempts=2)
    url = _url_result(hook).images[0].url
    secret_query = urlsplit(url).query
    texts = []
    emulator.faults.script(["503", "503"], endpoint="files")
    with caplog.at_level("DEBUG"), structlog.testing.capture_logs() as events:
        for bad in (
            url,  # two 503s: retried, logged, then final
            url.replace("http://", "https://", 1),  # a TLS handshake against a plain HTTP port
            url.replace(f":{urlsplit(url).port}/", ":99999/", 1),  # an invalid port
        ):
            with pytest.raises(AzerionError) as err:
                hook.download_image(bad)
            texts.append(_texts(err.value))
    logs = caplog.text + "\n".join(str(event) for event in events)
    assert "retry 1 of 1" in logs  # the capture saw the hook's retry line
    for text in [*texts, logs]:
        assert secret_query not in text
        assert SIGNATURE_PARAM not in text


def test_a_result_link_that_is_not_http_is_refused_before_sending(make_hook):
    with pytest.raises(AzerionValidationError):
        make_hook().download_image("file:///etc/passwd")


# -- statuses ---------------------------------------------------------------------------------------


class ScriptedServer:
    """A loopback HTTP server answering from a list of (status, headers, body) in order.

    Once the list is used up the last answer repeats. ``"redirect"`` answers a 302 to itself.
    """

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((self.command, self.path, dict(self.headers)))
                answer = owner.answers.pop(0) if len(owner.answers) > 1 else owner.answers[0]
                if answer == "redirect":
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if answer == "broken_chunks":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"10\r\n\x89PNG\r\n\x1a\n")  # promises 16 bytes, sends 8
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                status, headers, body = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _error(status: int, code: str) -> tuple[int, dict[str, str], bytes]:
    body = (
        f'{{"error": {{"message": "status {status}", "type": "invalid_request_error", '
        f'"code": "{code}", "param": null, "status_code": {status}}}}}'
    ).encode()
    return status, {"Content-Type": "application/json", "Retry-After": "0"}, body


@pytest.fixture
def scripted(monkeypatch):
    """Start a :class:`ScriptedServer` behind connection ``azerion_scripted``."""
    servers = []

    def start(*answers):
        server = ScriptedServer(answers).__enter__()
        servers.append(server)
        monkeypatch.setenv(
            "AIRFLOW_CONN_AZERION_SCRIPTED",
            f'{{"conn_type": "azerion", "host": "{server.base_url}", "password": "{SECRET_KEY}"}}',
        )
        return server

    yield start
    for server in servers:
        server.__exit__()


def _scripted_hook(**overrides) -> AzerionHook:
    overrides.setdefault("backoff_factor", 0.01)
    return AzerionHook("azerion_scripted", **overrides)


@pytest.mark.parametrize("status", [400, 402, 404, 405, 413, 415, 422])
def test_a_4xx_other_than_408_409_and_429_is_sent_once_and_fails_the_task(scripted, status):
    server = scripted(_error(status, "nope"))
    with pytest.raises(AzerionBadRequestError) as err:
        _scripted_hook().generate_images("a cat", model="m")
    assert isinstance(err.value, AirflowFailException)
    assert err.value.status_code == status
    assert len(server.requests) == 1  # even with Retry-After, and even for 413


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504])
def test_408_409_and_5xx_are_retried_within_the_budget(scripted, status):
    server = scripted(_error(status, "busy"))
    with pytest.raises(AzerionServerError) as err:
        _scripted_hook(max_attempts=3).generate_images("a cat", model="m")
    assert not isinstance(err.value, AirflowFailException)
    assert len(server.requests) == 3


def test_a_redirect_loop_is_an_azerion_error(scripted):
    scripted("redirect")
    with pytest.raises(AzerionConnectionError) as err:
        _scripted_hook().list_models()
    assert not isinstance(err.value, requests.RequestException)


def test_a_broken_chunked_download_is_retried_then_reported(scripted):
    server = scripted("broken_chunks")
    url = f"{server.base_url.removesuffix('/v1')}/files/1.png?sig=secret-sig"
    with pytest.raises(AzerionDownloadError) as err:
        _scripted_hook(max_attempts=2).download_image(url)
    assert "secret-sig" not in _texts(err.value)
    assert len(server.requests) == 2


def test_redirects_to_another_host_lose_the_key(scripted):
    import json

    target = scripted((200, {"Content-Type": "application/json"}, json.dumps({"data": []}).encode()))
    redirector = scripted((302, {"Location": f"{target.base_url}/models"}, b""))
    _scripted_hook().list_models()  # the connection now points at the redirector
    assert "Authorization" in redirector.requests[0][2]
    assert "Authorization" not in target.requests[0][2]


# -- hosts and pools --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("::1", None, "http://[::1]/v1"),
        ("::1", 8080, "http://[::1]:8080/v1"),
        ("[::1]:8080", None, "http://[::1]:8080/v1"),
        ("[::1]:8080/v2", None, "http://[::1]:8080/v2"),
        ("http://[::1]:8080", None, "http://[::1]:8080/v1"),
        ("2001:db8::1", None, "https://[2001:db8::1]/v1"),
        ("127.0.0.2:80", None, "http://127.0.0.2:80/v1"),
    ],
)
def test_ipv6_and_loopback_hosts(host, port, expected):
    assert build_base_url(host, port) == expected


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_an_ipv6_loopback_emulator_is_reachable_with_a_bare_host(monkeypatch):
    from airflow_provider_azerion.emulator.server import EmulatorServer

    with EmulatorServer(host="::1", api_key=SECRET_KEY, max_side=32) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_AZERION_V6",
            f'{{"conn_type": "azerion", "host": "[::1]:{server.port}", "password": "{SECRET_KEY}"}}',
        )
        hook = AzerionHook("azerion_v6")
        assert hook.base_url == f"http://[::1]:{server.port}/v1"
        assert hook.list_models()
        hook.close()


def test_the_pool_holds_at_least_the_hooks_concurrency(emulator, monkeypatch):
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_AZERION_SMALL_POOL",
        json.dumps(
            {
                "conn_type": "azerion",
                "host": emulator.base_url,
                "password": SECRET_KEY,
                "extra": {"pool_maxsize": 2},
            }
        ),
    )
    emulator.latency = 0.05
    hook = AzerionHook("azerion_small_pool", concurrency=6)
    barrier = threading.Barrier(6)

    def work():
        barrier.wait()
        for _ in range(4):
            hook.generate_images("a cat", model="stable-image-core-1.1", size="32x32")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert emulator.generation_count == 24
    assert hook.calls.sockets.connections_opened <= 6  # kept and reused, never churned
    hook.close()


# -- cancellation -----------------------------------------------------------------------------------


def test_cancel_stops_a_generation_in_flight_at_once(emulator, make_hook):
    emulator.latency = 30
    hook = make_hook()
    errors: list[BaseException] = []

    def generate():
        try:
            hook.generate_images("a slow cat", model="stable-image-core-1.1", size="32x32")
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=generate)
    thread.start()
    deadline = time.monotonic() + 10
    while emulator.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    hook.cancel()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5  # not read_timeout
    assert isinstance(errors[0], AzerionCancelledError)
    assert errors[0].request_sent
    with pytest.raises(AzerionCancelledError):  # and nothing more is sent
        hook.list_models()


def test_cancel_ends_a_wait_between_retries(emulator, make_hook):
    emulator.faults.script(["503"] * 5)
    hook = make_hook(backoff_factor=30, max_retry_wait=60)
    threading.Timer(0.5, hook.cancel).start()
    started = time.monotonic()
    with pytest.raises(AzerionCancelledError):
        hook.generate_images("a cat", model="stable-image-core-1.1", size="32x32")
    assert time.monotonic() - started < 5
    assert emulator.generation_count == 1


# -- configuration ----------------------------------------------------------------------------------


def test_the_key_can_come_from_azerion_access_token(emulator, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_AZERION_DEFAULT")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AZERION_NOKEY", f'{{"conn_type": "azerion", "host": "{emulator.base_url}"}}'
    )
    monkeypatch.delenv("AZERION_API_KEY", raising=False)
    monkeypatch.setenv("AZERION_ACCESS_TOKEN", SECRET_KEY)
    hook = AzerionHook("azerion_nokey")
    assert hook.list_models()
    hook.close()


def test_azerion_api_key_wins_over_azerion_access_token(emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_AZERION_NOKEY", f'{{"conn_type": "azerion", "host": "{emulator.base_url}"}}'
    )
    monkeypatch.setenv("AZERION_API_KEY", SECRET_KEY)
    monkeypatch.setenv("AZERION_ACCESS_TOKEN", "another-token")
    hook = AzerionHook("azerion_nokey")
    assert hook.list_models()
    hook.close()


def test_no_key_anywhere_is_a_configuration_error_naming_both_variables(monkeypatch):
    monkeypatch.delenv("AZERION_API_KEY", raising=False)
    monkeypatch.delenv("AZERION_ACCESS_TOKEN", raising=False)
    with pytest.raises(AzerionConfigurationError) as err:
        AzerionHook("azerion_does_not_exist").list_models()
    assert "AZERION_API_KEY" in str(err.value)
    assert "AZERION_ACCESS_TOKEN" in str(err.value)
