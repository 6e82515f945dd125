"""An S3 server on loopback with a real store's latency, and a count of every request it gets.

moto's S3 server answers in a few milliseconds; S3 itself takes 20-50 ms a request. A resume that
reads one object per prompt looks fine against the first and takes minutes against the second.
:class:`S3LatencyProxy` sits in front of moto on 127.0.0.1, waits ``latency`` seconds before
forwarding each request (requests in flight wait side by side, as on a real store), and counts
requests by kind (``LIST``, ``GET``, ``PUT``, ``HEAD``, ``DELETE``, ``POST``) and by object key.

Used in process by the tests (``moto_s3()``) and, so that moto's CPU does not compete with the
measured client for the GIL, in a process of its own by the benchmarks
(``python -m benchmarks.s3_latency --latency 0.02``, see :func:`s3_process`). The proxy's own
statistics are at ``GET /_proxy/stats`` and reset with ``POST /_proxy/reset``; nothing under
``/_proxy/`` is forwarded.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from benchmarks.harness import terminate

#: Headers that describe one hop, not the message: never forwarded as they are.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
)
#: The test credentials moto accepts (it checks none).
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


@dataclass(frozen=True)
class Request:
    """One request the proxy forwarded.

    :param method: the HTTP method.
    :param kind: ``LIST``, ``GET``, ``PUT``, ``HEAD``, ``DELETE``, ``POST`` or ``OTHER``.
    :param key: the object key (path-style addressing: after the bucket), ``""`` for the bucket.
    """

    method: str
    kind: str
    key: str


def request_kind(method: str, path: str, query: str) -> str:
    """Classify an S3 request: a GET on a bucket with listing parameters is a ``LIST``."""
    segments = [segment for segment in path.split("/") if segment]
    params = parse_qs(query, keep_blank_values=True)
    if method == "GET" and (len(segments) <= 1 or "list-type" in params) and "uploadId" not in params:
        return "LIST"
    return method if method in ("GET", "PUT", "HEAD", "DELETE", "POST") else "OTHER"


class S3LatencyProxy:
    """Forward HTTP requests to ``upstream`` after ``latency`` seconds each, counting them.

    :param upstream: base URL of the S3 server, e.g. moto's ``http://127.0.0.1:5000``.
    :param latency: seconds added to every request.
    :param host: address to listen on (loopback).
    :param port: port to listen on; 0 picks a free one.
    """

    def __init__(self, upstream: str, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = urlsplit(upstream)
        self.latency = latency
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._in_flight = 0
        #: Most requests the proxy held at once since the start (or the last :meth:`reset`).
        self.peak_in_flight = 0
        self._local = threading.local()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The proxy's base URL: the ``endpoint_url`` of clients."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[Request]:
        """Every request forwarded since the start (or the last :meth:`reset`), in arrival order."""
        with self._lock:
            return list(self._requests)

    def counts(self) -> dict[str, int]:
        """Requests by kind."""
        return dict(collections.Counter(request.kind for request in self.requests))

    def reset(self) -> None:
        """Forget the requests counted so far."""
        with self._lock:
            self._requests.clear()
            self.peak_in_flight = 0

    def start(self) -> S3LatencyProxy:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="s3-latency-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> S3LatencyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _upstream_connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
            self._local.connection = connection
        return connection

    def _forward(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> tuple:
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed meanwhile
            connection = self._upstream_connection()
            try:
                connection.request(method, target, body=body or None, headers=dict(headers))
                response = connection.getresponse()
                return response.status, response.reason, response.getheaders(), response.read()
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients use it

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _stats(self) -> None:
                if self.command == "POST" and self.path.startswith("/_proxy/reset"):
                    proxy.reset()
                    payload = b"{}"
                else:
                    requests = proxy.requests
                    payload = json.dumps(
                        {
                            "counts": proxy.counts(),
                            "requests": [[r.method, r.kind, r.key] for r in requests],
                        }
                    ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _proxy(self) -> None:
                body = self._body()
                if self.path.startswith("/_proxy/"):
                    self._stats()
                    return
                parts = urlsplit(self.path)
                segments = parts.path.lstrip("/").split("/", 1)
                key = unquote(segments[1]) if len(segments) > 1 else ""
                kind = request_kind(self.command, parts.path, parts.query)
                with proxy._lock:
                    proxy._requests.append(Request(self.command, kind, key))
                    proxy._in_flight += 1
                    proxy.peak_in_flight = max(proxy.peak_in_flight, proxy._in_flight)
                try:
                    if proxy.latency:
                        time.sleep(proxy.latency)
                    headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS]
                    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                    if body or self.command in ("PUT", "POST"):
                        headers.append(("Content-Length", str(len(body))))
                    status, reason, response_headers, payload = proxy._forward(
                        self.command, self.path, headers, body
                    )
                finally:
                    with proxy._lock:
                        proxy._in_flight -= 1
                self.send_response(status, reason)
                for name, value in response_headers:
                    if name.lower() not in _HOP_HEADERS and not (
                        name.lower() == "content-length" and self.command != "HEAD"
                    ):
                        self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _proxy

        return Handler


def aws_connection(endpoint_url: str) -> dict[str, Any]:
    """An Airflow AWS connection (as JSON for ``AIRFLOW_CONN_*``) to an S3 server at ``endpoint_url``."""
    return {
        "conn_type": "aws",
        "login": CREDENTIALS["aws_access_key_id"],
        "password": CREDENTIALS["aws_secret_access_key"],
        "extra": {"endpoint_url": endpoint_url, "region_name": REGION},
    }


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client for the server at ``endpoint_url`` (to create buckets, check objects)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION, **CREDENTIALS)


@contextlib.contextmanager
def moto_s3(latency: float = 0.0) -> Iterator[tuple[str, S3LatencyProxy]]:
    """moto's S3 server and a proxy in front of it, both in this process on loopback.

    :param latency: seconds the proxy adds to every request.
    :return: moto's own URL (uncounted, no latency) and the proxy.
    """
    import requests
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    try:
        with S3LatencyProxy(moto_url, latency) as proxy:
            yield moto_url, proxy
    finally:
        # moto keeps its buckets in this process, across servers: leave none to the next user.
        with contextlib.suppress(Exception):
            requests.post(f"{moto_url}/moto-api/reset", timeout=10)
        server.stop()


@contextlib.contextmanager
def s3_process(latency: float, start_timeout: float = 60.0) -> Iterator[tuple[str, str]]:
    """moto and the proxy in a process of their own; yield ``(moto_url, proxy_url)``.

    Read the proxy's counts with :func:`remote_stats`, reset them with :func:`remote_reset`.
    """
    args = [sys.executable, "-m", "benchmarks.s3_latency", "--latency", str(latency)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + start_timeout
        match = None
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                match = re.search(r"moto (\S+) proxy (\S+)", proc.stdout.readline())
        if match is None:
            raise RuntimeError(f"the S3 server process did not start within {start_timeout:g} s")
        yield match[1], match[2]
    finally:
        terminate(proc)


def remote_stats(proxy_url: str) -> dict[str, Any]:
    """The counts of a proxy, possibly in another process: ``{"counts": {...}, "requests": [...]}``."""
    import requests

    return requests.get(f"{proxy_url}/_proxy/stats", timeout=30).json()


def remote_reset(proxy_url: str) -> None:
    """Reset the counts of a proxy, possibly in another process."""
    import requests

    requests.post(f"{proxy_url}/_proxy/reset", timeout=30).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    """Serve moto and a latency proxy until terminated; print ``moto <url> proxy <url>`` once ready."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.s3_latency", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to every request")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with moto_s3(args.latency) as (moto_url, proxy):
        print(f"moto {moto_url} proxy {proxy.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
