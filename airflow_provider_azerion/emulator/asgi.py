"""ASGI pieces both origins share: the request log, request ids, and broken-connection faults.

Each origin (the API, and the result files) wraps its app in :class:`RecordingMiddleware`, which
logs every request in the one request log and sets a request-id header. The responses here go
below HTTP: they close the connection without an answer, or halfway through one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_azerion.emulator.faults import TRANSPORT_EXTENSION
from airflow_provider_azerion.emulator.state import EmulatorState, RequestRecord

log = logging.getLogger(__name__)

_NOTE_KEY = "azerion_emulator.note"


@dataclass
class Note:
    """What the routes learn about a request, for its :class:`RequestRecord`."""

    request_id: str = ""
    model: str | None = None
    prompt: str | None = None
    fault: str | None = None
    #: Logs the request; called as the response starts, before the client can see any of it.
    finish: Callable[[int], None] = lambda status: None


def note_of(request: Request) -> Note:
    """Return the :class:`Note` of a request (a blank one when the app runs without middleware)."""
    note = request.scope.get(_NOTE_KEY)
    if note is None:
        note = request.scope[_NOTE_KEY] = Note()
    return note  # type: ignore[no-any-return]


def _close_connection(scope: Scope, abort: bool) -> None:
    transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
    if transport is None:
        raise RuntimeError("Connection faults need the emulator's own server (EmulatorServer or the CLI)")
    if abort:
        transport.abort()
    else:
        transport.close()


async def _wait_for_disconnect(receive: Receive) -> None:
    # Returning before the server has seen the disconnect would make it answer with a 500.
    async def drain() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    await asyncio.wait_for(drain(), timeout=5)


class DroppedConnection(Response):
    """Close the TCP connection without sending a single byte of HTTP."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        note = scope.get(_NOTE_KEY)
        if note is not None:
            note.finish(0)
        _close_connection(scope, abort=True)
        await _wait_for_disconnect(receive)


class TruncatedResponse(Response):
    """Promise the whole body in ``Content-Length``, send half of it, then close the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        _close_connection(scope, abort=False)  # close, not abort: let the half already sent arrive
        await _wait_for_disconnect(receive)


class RecordingMiddleware:
    """Outermost layer of an origin: sets the request-id header, logs each request, answers escapes.

    :param app: The origin's app.
    :param state: Where the request log lives.
    :param origin: ``"api"`` or ``"files"``, copied into each :class:`RequestRecord`.
    :param request_id_header: Response header carrying the request id.
    :param new_request_id: Makes a request id.
    :param failure_response: The response to an exception that escaped the app, given the request id.
    """

    def __init__(
        self,
        app: ASGIApp,
        state: EmulatorState,
        origin: str,
        request_id_header: str,
        new_request_id: Callable[[], str],
        failure_response: Callable[[str], Response],
    ) -> None:
        self.app = app
        self.state = state
        self.origin = origin
        self.request_id_header = request_id_header.encode("latin-1")
        self.new_request_id = new_request_id
        self.failure_response = failure_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.new_request_id()
        started = time.monotonic()
        # Only whether the header came: the log must never hold a credential.
        authorization = any(name.lower() == b"authorization" for name, _ in scope.get("headers", []))
        recorded = False

        def finish(status: int) -> None:
            # Logged before the response leaves, so a client that got its answer finds it logged.
            nonlocal recorded
            if recorded:
                return
            recorded = True
            self.state.record(
                RequestRecord(
                    method=scope["method"],
                    path=scope["path"],  # Never the query string: on result links it is a credential.
                    status=status,
                    started=started,
                    finished=time.monotonic(),
                    model=note.model,
                    prompt=note.prompt,
                    fault=note.fault,
                    request_id=request_id,
                    authorization=authorization,
                    origin=self.origin,
                )
            )

        note = scope[_NOTE_KEY] = Note(request_id=request_id, finish=finish)
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                finish(message["status"])
                headers = [*message.get("headers", []), (self.request_id_header, request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            log.exception("Azerion emulator failed on %s %s", scope["method"], scope["path"])
            if not response_started:
                await self.failure_response(request_id)(scope, receive, send_with_request_id)
        finally:
            finish(0)
