"""The emulator's HTTP API: a FastAPI app answering like ``https://api.azerion.ai/v1``.

Routes: ``GET /v1/models`` and ``POST /v1/images/generations`` (bearer-token auth), and
``GET /v1/files/<name>`` (no auth, like the signed CDN links of ``url`` responses). Every
response, errors included, carries an ``x-request-id`` header, and every error, including
FastAPI's own 404/405/422 and unexpected exceptions, uses Azerion's error shape.

Bodies are parsed by hand rather than with pydantic models: FastAPI would answer invalid ones with
its own 422 shape, which Azerion never sends.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_azerion.emulator import images
from airflow_provider_azerion.emulator.faults import STATUS_FAULTS, TRANSPORT_EXTENSION, slow_seconds
from airflow_provider_azerion.emulator.state import EmulatorState, RequestRecord
from airflow_provider_azerion.emulator.validation import (
    MODELS,
    APIError,
    GenerationRequest,
    decode_json_object,
    parse_generation_request,
)

log = logging.getLogger(__name__)

_NOTE_KEY = "azerion_emulator.note"
_NOT_AN_IMAGE = b"hello world" * 10
_INVALID_BASE64 = "%%% this is not base64 %%%"
_EMPTY_USAGE = {
    "input_tokens": 0,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
    "output_tokens": 0,
    "total_tokens": 0,
}
_FAULT_ERRORS = {
    429: ("Rate limit exceeded. Please retry after a short wait.", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "internal_server_error"),
    502: ("Bad gateway: the upstream model provider returned an invalid response.", "bad_gateway"),
    503: ("The service is temporarily unavailable. Please try again later.", "service_unavailable"),
    504: ("Gateway timeout: the upstream model provider did not answer in time.", "gateway_timeout"),
}
_PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class _Note:
    """What the routes learn about a request, for its :class:`RequestRecord`."""

    model: str | None = None
    prompt: str | None = None
    fault: str | None = None
    #: Logs the request; called as the response starts, before the client can see any of it.
    finish: Callable[[int], None] = lambda status: None


def create_app(state: EmulatorState) -> ASGIApp:
    """Build the emulator's ASGI app.

    :param state: Knobs, log and faults; the app reads the knobs on every request.
    :return: The FastAPI app wrapped in the middleware that logs requests and sets request ids.
    """
    app = FastAPI(title="Azerion emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(APIError, _api_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error_response)

    @app.get("/v1/models")
    async def list_models(request: Request) -> Response:
        _authenticate(request, state)
        fault = _start_fault(request, state, "models")
        if fault is not None and (response := await _fault_response(fault, state)) is not None:
            return response
        models = [
            {"id": spec.id, "object": "model", "created": spec.created, "owned_by": spec.owned_by}
            for spec in MODELS.values()
        ]
        body = {"object": "list", "data": [] if fault == "empty_data" else models}
        return _json_response(body, truncated=fault == "truncated_json")

    @app.post("/v1/images/generations")
    async def create_images(request: Request) -> Response:
        in_flight = state.generation_started()
        try:
            return await _generate(request, state, in_flight)
        finally:
            state.generation_finished()

    @app.get("/v1/files/{name}")
    async def download_file(request: Request, name: str) -> Response:
        fault = _start_fault(request, state, "files")
        if fault is not None and (response := await _fault_response(fault, state)) is not None:
            return response
        stored = state.files.get(name)
        if stored is None:
            raise APIError(404, f"No file named '{name}' (files are kept in memory).", code="file_not_found")
        if fault == "not_image":
            return Response(_NOT_AN_IMAGE, media_type=stored.content_type)
        if fault == "truncated":
            return _TruncatedResponse(stored.content, media_type=stored.content_type)
        return Response(stored.content, media_type=stored.content_type)

    return _RecordingMiddleware(app, state)


async def _generate(request: Request, state: EmulatorState, in_flight: int) -> Response:
    note = _note(request)
    raw_body = await request.body()
    note.model, note.prompt = _model_and_prompt(raw_body)

    # Checked in the order a gateway would: who is calling, how busy we are, then what they ask.
    _authenticate(request, state)
    if state.max_concurrency is not None and in_flight > state.max_concurrency:
        note.fault = "max_concurrency"
        raise _rate_limited(state)
    fault = _start_fault(request, state, "generations")
    if fault is not None and (response := await _fault_response(fault, state)) is not None:
        return response
    generation = parse_generation_request(decode_json_object(raw_body))
    if state.latency > 0:
        await asyncio.sleep(state.latency)
    data = [] if fault == "empty_data" else await _render(request, state, generation, fault)
    body = {"created": int(time.time()), "data": data, "usage": _EMPTY_USAGE}
    # Bodies of large images run to tens of megabytes: encode them off the event loop.
    content = await asyncio.to_thread(json.dumps, body)
    return _json_response(content, truncated=fault == "truncated_json")


async def _render(
    request: Request, state: EmulatorState, generation: GenerationRequest, fault: str | None
) -> list[dict[str, str]]:
    width, height = images.scale_to_max_side(generation.width, generation.height, state.max_side)
    seed = generation.seed if generation.seed is not None else state.seed
    content_type = images.CONTENT_TYPES[generation.output_format]
    # Threads let Pillow's encoders run while other requests sleep out their latency.
    renders = await asyncio.gather(
        *(
            asyncio.to_thread(
                images.render_image,
                generation.prompt,
                seed,
                index,
                width,
                height,
                generation.output_format,
                state.noise,
            )
            for index in range(generation.count)
        )
    )
    revised_prompt = f"{generation.prompt}, rendered by the Azerion emulator"
    data = []
    for content in renders:
        if fault == "not_image":
            content = _NOT_AN_IMAGE
        if fault == "invalid_base64":
            # Whatever response_format asked for: the point is a b64_json no decoder accepts.
            item = {"b64_json": _INVALID_BASE64}
        elif generation.response_format == "b64_json":
            item = {"b64_json": base64.b64encode(content).decode("ascii")}
        else:
            name = f"{uuid.uuid4().hex}.{generation.output_format}"
            state.files.put(name, content, content_type)
            item = {"url": f"{str(request.base_url).rstrip('/')}/v1/files/{name}"}
        data.append({**item, "revised_prompt": revised_prompt})
    return data


def _model_and_prompt(raw_body: bytes) -> tuple[str | None, str | None]:
    """Best-effort ``model`` and ``prompt`` of a body, for the request log, whatever its validity."""
    try:
        payload = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(payload, dict):
        return None, None
    model, prompt = payload.get("model"), payload.get("prompt")
    return (model if isinstance(model, str) else None), (prompt if isinstance(prompt, str) else None)


def _authenticate(request: Request, state: EmulatorState) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(
            401,
            "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY'.",
            code="invalid_api_key",
        )
    # Constant-time comparison, and a message that never repeats what was presented.
    if not hmac.compare_digest(token.strip().encode(), state.api_key.encode()):
        raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")


def _start_fault(request: Request, state: EmulatorState, endpoint: str) -> str | None:
    fault = state.faults.next_fault(endpoint)
    _note(request).fault = fault
    return fault


async def _fault_response(fault: str, state: EmulatorState) -> Response | None:
    """Answer a fault that replaces the response; ``None`` for faults that alter a normal one."""
    if fault == "drop":
        return _DroppedConnection()
    if fault == "html502":
        return Response(_PROXY_PAGE, status_code=502, media_type="text/html")
    if fault == "429":
        return _api_error_body(_rate_limited(state))
    if fault in STATUS_FAULTS:
        status = STATUS_FAULTS[fault]
        message, code = _FAULT_ERRORS[status]
        return _api_error_body(APIError(status, message, code=code))
    delay = slow_seconds(fault)
    if delay:
        await asyncio.sleep(delay)
    return None


def _rate_limited(state: EmulatorState) -> APIError:
    retry_after = max(0.0, state.retry_after)
    return APIError(
        429,
        _FAULT_ERRORS[429][0],
        code="rate_limit_exceeded",
        headers={
            "Retry-After": str(math.ceil(retry_after)),
            "retry-after-ms": str(round(retry_after * 1000)),
        },
    )


def _json_response(body: dict[str, Any] | str, truncated: bool = False) -> Response:
    content = (body if isinstance(body, str) else json.dumps(body)).encode()
    if truncated:
        content = content[: len(content) // 2]
    return Response(content, media_type="application/json")


def _api_error_body(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


async def _api_error_response(request: Request, error: APIError) -> Response:
    return _api_error_body(error)


async def _http_error_response(request: Request, error: HTTPException) -> Response:
    if error.status_code == 404:
        message, code = f"Unknown request URL: {request.method} {request.url.path}.", "unknown_url"
    elif error.status_code == 405:
        message, code = f"Method {request.method} is not allowed on {request.url.path}.", "method_not_allowed"
    else:
        message, code = str(error.detail), "http_error"
    return _api_error_body(APIError(error.status_code, message, code=code, headers=dict(error.headers or {})))


async def _validation_error_response(request: Request, error: RequestValidationError) -> Response:
    return _api_error_body(APIError(400, f"Invalid request: {error.errors()}", code="invalid_request"))


async def _unexpected_error_response(request: Request, error: Exception) -> Response:
    return _api_error_body(
        APIError(500, "The emulator failed unexpectedly; see its log.", code="internal_error")
    )


def _note(request: Request) -> _Note:
    note = request.scope.get(_NOTE_KEY)
    if note is None:  # The app is running without its middleware (e.g. mounted elsewhere).
        note = request.scope[_NOTE_KEY] = _Note()
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


class _DroppedConnection(Response):
    """Close the TCP connection without sending a single byte of HTTP."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        note = scope.get(_NOTE_KEY)
        if note is not None:
            note.finish(0)
        _close_connection(scope, abort=True)
        await _wait_for_disconnect(receive)


class _TruncatedResponse(Response):
    """Promise the whole body in ``Content-Length``, send half of it, then close the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        _close_connection(scope, abort=False)  # close, not abort: let the half already sent arrive
        await _wait_for_disconnect(receive)


class _RecordingMiddleware:
    """Outermost layer: sets ``x-request-id``, logs each request, and answers escaped errors."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{uuid.uuid4().hex}"
        started = time.monotonic()
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
                    path=scope["path"],
                    status=status,
                    started=started,
                    finished=time.monotonic(),
                    model=note.model,
                    prompt=note.prompt,
                    fault=note.fault,
                    request_id=request_id,
                )
            )

        note = scope[_NOTE_KEY] = _Note(finish=finish)
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                finish(message["status"])
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            log.exception("Azerion emulator failed on %s %s", scope["method"], scope["path"])
            if not response_started:
                error = APIError(500, "The emulator failed unexpectedly; see its log.", code="internal_error")
                await _api_error_body(error)(scope, receive, send_with_request_id)
        finally:
            finish(0)
