"""Run the emulator in a background thread, for tests, demos and benchmarks.

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
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from airflow_provider_azerion.emulator.faults import TRANSPORT_EXTENSION, FaultPlan
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


class EmulatorServer:
    """The Azerion emulator, served by uvicorn on a daemon thread.

    Knobs can be changed while it runs (``server.latency = 0.2``) and apply to the next request.

    :param api_key: The only bearer token accepted.
    :param host: Interface to bind; loopback unless you mean to expose it.
    :param port: Port to bind; ``0`` picks a free one, readable from :attr:`port` after start.
    :param latency: Seconds every generation request sleeps before rendering.
    :param max_concurrency: Generation requests allowed in flight; more get a 429. ``None``: no cap.
    :param retry_after: Seconds advertised in ``Retry-After`` / ``retry-after-ms`` on 429s.
    :param max_side: Longest side of rendered images (requested sizes are scaled down keeping their
        aspect ratio), to keep tests fast. ``None``: render the requested size.
    :param noise: Render incompressible noise instead of a gradient with the prompt.
    :param seed: Seed of requests that give none.
    """

    api_key: _Knob[str] = _Knob()
    latency: _Knob[float] = _Knob()
    max_concurrency: _Knob[int | None] = _Knob()
    retry_after: _Knob[float] = _Knob()
    max_side: _Knob[int | None] = _Knob()
    noise: _Knob[bool] = _Knob()
    seed: _Knob[int] = _Knob()

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
    ) -> None:
        self.host = host
        self.port = port
        self.state = EmulatorState(
            api_key=api_key,
            latency=latency,
            max_concurrency=max_concurrency,
            retry_after=retry_after,
            max_side=max_side,
            noise=noise,
            seed=seed,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """API base URL, e.g. ``http://127.0.0.1:8080/v1``: what a client's ``base_url`` should be."""
        return f"{self.url}/v1"

    @property
    def faults(self) -> FaultPlan:
        """The fault plan: ``server.faults.script([...])``, ``server.faults.set_rate(...)``."""
        return self.state.faults

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first."""
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

        :param path_suffix: E.g. ``"/images/generations"`` or ``"/models"``.
        """
        return [record for record in self.requests if record.path.endswith(path_suffix)]

    def reset(self) -> None:
        """Clear the request log, counters, faults and stored files; knobs are kept."""
        self.state.reset()

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        """Bind the socket and serve on a daemon thread; return once connections are accepted.

        :param timeout: Seconds to wait for the server to come up.
        :raises RuntimeError: If it is already running or failed to start.
        """
        import uvicorn

        from airflow_provider_azerion.emulator.app import create_app

        if self._thread is not None:
            raise RuntimeError("The emulator is already running")
        # Binding here, not in uvicorn, tells us the port chosen for port 0 before serving starts.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if hasattr(socket, "SO_REUSEADDR") and self.port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.state),
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
        self._server, self._socket, self._error = server, sock, None
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name=f"azerion-emulator-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The Azerion emulator did not start on {self.url}") from self._error
            time.sleep(0.01)
        return self

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # uvicorn exits with SystemExit on start-up failures.
            self._error = error

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, letting requests in flight finish for up to ``timeout`` seconds.

        :param timeout: Seconds to wait before forcing the server down.
        """
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(2)
        if sock is not None:
            sock.close()

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
        return f"EmulatorServer(url={self.url!r}, running={self._thread is not None})"


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
