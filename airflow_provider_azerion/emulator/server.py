"""Run the emulator's two origins in background threads, for tests, demos and benchmarks.

uvicorn and the app are imported only when a server starts, so importing this module (and the
pytest plugin that uses it) costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload
from urllib.parse import urlsplit

from airflow_provider_azerion.emulator.faults import TRANSPORT_EXTENSION, FaultPlan
from airflow_provider_azerion.emulator.rules import URL_EXPIRY_SECONDS
from airflow_provider_azerion.emulator.state import EmulatorState, RequestRecord

if TYPE_CHECKING:
    import uvicorn

T = TypeVar("T")


class _Knob(Generic[T]):
    """An attribute of the server stored on its :class:`EmulatorState`, where the app reads it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _Knob[T]: ...

    @overload
    def __get__(self, obj: EmulatorServer, objtype: type | None = None) -> T: ...

    def __get__(self, obj: EmulatorServer | None, objtype: type | None = None) -> T | _Knob[T]:
        if obj is None:
            return self
        return cast(T, getattr(obj.state, self.name))

    def __set__(self, obj: EmulatorServer, value: T) -> None:
        setattr(obj.state, self.name, value)


class _Origin:
    """One uvicorn server on its own socket and daemon thread: the API, or the result files."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.socket: socket.socket | None = None
        self.error: BaseException | None = None

    @staticmethod
    def bind(host: str, port: int) -> socket.socket:
        """Bind a listening socket; binding here, not in uvicorn, tells the port chosen for 0."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if hasattr(socket, "SO_REUSEADDR") and port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        return sock

    def serve(self, app: Any, sock: socket.socket) -> None:
        """Start serving ``app`` on ``sock`` in a daemon thread (returns at once)."""
        import uvicorn

        config = uvicorn.Config(
            app,
            # No log_config: uvicorn would otherwise re-run dictConfig on the host process (a test
            # suite, Airflow) at every start; its warnings still reach the root logger.
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http=_transport_exposing_protocol(),
            timeout_graceful_shutdown=2,
        )
        server = _thread_server_class()(config)
        self.server, self.socket, self.error = server, sock, None
        self.thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"azerion-emulator-{self.name}", daemon=True
        )
        self.thread.start()

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # uvicorn exits with SystemExit on start-up failures.
            self.error = error

    @property
    def started(self) -> bool:
        """Whether the server accepts connections."""
        return self.server is not None and self.server.started

    @property
    def alive(self) -> bool:
        """Whether the serving thread still runs."""
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float) -> None:
        """Stop serving, letting requests in flight finish for up to ``timeout`` seconds."""
        server, thread, sock = self.server, self.thread, self.socket
        self.server = self.thread = self.socket = None
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(2)
        if sock is not None:
            sock.close()


class EmulatorServer:
    """The Azerion emulator: the API and the result-file origin, served by uvicorn on daemon threads.

    The API answers at :attr:`base_url`; the images of ``response_format="url"`` are served by a
    second origin at :attr:`files_url` (same host, another port), through signed links that expire,
    like the object-storage links of the real API. Both start and stop together and share one
    request log. Knobs can be changed while it runs (``server.latency = 0.2``) and apply to the next
    request.

    :param api_key: The only bearer token accepted.
    :param host: Interface to bind (both origins); loopback unless you mean to expose it.
    :param port: API port; ``0`` picks a free one, readable from :attr:`port` after start.
    :param latency: Seconds every generation request sleeps before rendering.
    :param max_concurrency: Generation requests allowed in flight; more get a 429. ``None``: no cap.
    :param retry_after: Seconds advertised in ``Retry-After`` / ``retry-after-ms`` on 429s.
    :param max_side: Longest side of rendered images (requested sizes are scaled down keeping their
        aspect ratio), to keep tests fast. ``None``: render the requested size.
    :param noise: Render incompressible noise instead of a gradient with the prompt.
    :param seed: Seed of requests that give none.
    :param files_port: Port of the result-file origin; ``0`` (the default) picks a free one.
    :param url_expiry: Seconds a result link stays valid (``X-Tos-Expires``; default 24 h).
    :param forbidden_models: Model ids the key may not use: generations with them get a 403
        ``permission_error``.
    :param revise_prompts: Send a ``revised_prompt`` with every image. By default none is sent: the
        API sends one only when it revised the prompt.
    :param clock_offset: Seconds added to the emulator's clock (``created``, link dates and
        expiry); raise it to make links expire without waiting.
    """

    api_key: _Knob[str] = _Knob()
    latency: _Knob[float] = _Knob()
    max_concurrency: _Knob[int | None] = _Knob()
    retry_after: _Knob[float] = _Knob()
    max_side: _Knob[int | None] = _Knob()
    noise: _Knob[bool] = _Knob()
    seed: _Knob[int] = _Knob()
    url_expiry: _Knob[int] = _Knob()
    revise_prompts: _Knob[bool] = _Knob()
    clock_offset: _Knob[float] = _Knob()

    def __init__(
        self,
        api_key: str = "emulator-key",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        max_concurrency: int | None = None,
        retry_after: float = 1.0,
        max_side: int | None = None,
        noise: bool = False,
        seed: int = 0,
        files_port: int = 0,
        url_expiry: int = URL_EXPIRY_SECONDS,
        forbidden_models: Iterable[str] = (),
        revise_prompts: bool = False,
        clock_offset: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.files_port = files_port
        self.state = EmulatorState(
            api_key=api_key,
            latency=latency,
            max_concurrency=max_concurrency,
            retry_after=retry_after,
            max_side=max_side,
            noise=noise,
            seed=seed,
            url_expiry=url_expiry,
            forbidden_models=frozenset(forbidden_models),
            revise_prompts=revise_prompts,
            clock_offset=clock_offset,
        )
        self._api = _Origin("api")
        self._files = _Origin("files")
        self._running = False

    @property
    def forbidden_models(self) -> frozenset[str]:
        """Model ids the key may not use (a 403 ``permission_error``); set it with any iterable."""
        return self.state.forbidden_models

    @forbidden_models.setter
    def forbidden_models(self, models: Iterable[str]) -> None:
        self.state.forbidden_models = frozenset(models)

    def _origin_url(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """Root URL of the API origin, e.g. ``http://127.0.0.1:8095``."""
        return self._origin_url(self.port)

    @property
    def base_url(self) -> str:
        """API base URL, e.g. ``http://127.0.0.1:8095/v1``: what a client's ``base_url`` should be."""
        return f"{self.url}/v1"

    @property
    def files_url(self) -> str:
        """Root URL of the result-file origin, e.g. ``http://127.0.0.1:8081``; result links start with it."""
        return self._origin_url(self.files_port)

    @property
    def faults(self) -> FaultPlan:
        """The fault plan: ``server.faults.script([...])``, ``server.faults.set_rate(...)``."""
        return self.state.faults

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log of both origins, oldest first."""
        return self.state.requests

    @property
    def peak_concurrency(self) -> int:
        """Most generation requests in flight at once, including those rejected or faulted."""
        return self.state.peak_concurrency

    @property
    def in_flight(self) -> int:
        """Generation requests being handled right now."""
        return self.state.in_flight

    @property
    def generation_count(self) -> int:
        """Requests received by ``POST /v1/images/generations``."""
        return self.state.generation_count

    def requests_to(self, path_suffix: str) -> list[RequestRecord]:
        """Return the logged requests whose path ends with ``path_suffix``, oldest first.

        A query string in ``path_suffix`` is ignored, and so are the scheme and host of a full URL,
        so a result link can be passed as it is: the log keeps paths only.

        :param path_suffix: E.g. ``"/images/generations"``, ``"/models"``, or a result link.
        """
        suffix = path_suffix.partition("?")[0]
        if "://" in suffix:
            suffix = urlsplit(suffix).path
        return [record for record in self.requests if record.path.endswith(suffix)]

    def reset(self) -> None:
        """Clear the request log, counters, faults and stored files; knobs are kept."""
        self.state.reset()

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        """Bind both origins and serve them on daemon threads; return once both accept connections.

        :param timeout: Seconds to wait for the servers to come up.
        :raises RuntimeError: If it is already running or failed to start.
        :raises OSError: If a port cannot be bound.
        """
        from airflow_provider_azerion.emulator.app import create_app
        from airflow_provider_azerion.emulator.object_storage import create_files_app

        if self._running:
            raise RuntimeError("The emulator is already running")
        api_socket = _Origin.bind(self.host, self.port)
        try:
            files_socket = _Origin.bind(self.host, self.files_port)
        except OSError:
            api_socket.close()
            raise
        self.port = api_socket.getsockname()[1]
        self.files_port = files_socket.getsockname()[1]
        self.state.files_url = self.files_url
        self._running = True
        self._api.serve(create_app(self.state), api_socket)
        self._files.serve(create_files_app(self.state), files_socket)
        deadline = time.monotonic() + timeout
        while not (self._api.started and self._files.started):
            if not (self._api.alive and self._files.alive) or time.monotonic() > deadline:
                error = self._api.error or self._files.error
                self.stop()
                raise RuntimeError(f"The Azerion emulator did not start on {self.url}") from error
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both origins, letting requests in flight finish for up to ``timeout`` seconds.

        :param timeout: Seconds to wait before forcing each server down.
        """
        self._running = False
        self._api.stop(timeout)
        self._files.stop(timeout)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r}, files_url={self.files_url!r}, running={self._running})"


@functools.cache
def _thread_server_class() -> type[uvicorn.Server]:
    import uvicorn

    class ThreadedServer(uvicorn.Server):
        """A uvicorn server that leaves signal handling to the main thread's owner."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def install_signal_handlers(self) -> None:  # The hook of uvicorn releases before 0.29.
            pass

    return ThreadedServer


@functools.cache
def _transport_exposing_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, extended to put each connection's transport in the request scope.

    The ``drop`` fault must close the socket before any byte of HTTP is written; ASGI offers no way
    to do that (an exception makes uvicorn answer with a 500), so the app gets the transport itself.
    """
    base: Any
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools is optional; h11 always ships with uvicorn.
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class TransportExposingProtocol(base):  # type: ignore[misc]
        app: Any
        transport: asyncio.Transport

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            app = self.app

            async def app_with_transport(scope: Any, receive: Any, send: Any) -> None:
                scope.setdefault("extensions", {})[TRANSPORT_EXTENSION] = self.transport
                await app(scope, receive, send)

            self.app = app_with_transport

    return TransportExposingProtocol
