"""The emulator's API origin: a FastAPI app answering like ``https://api.azerion.ai/v1``.

Routes: ``GET /v1/models`` and ``POST /v1/images/generations``, both behind bearer-token auth.
Result images of ``response_format="url"`` are not served here but by the result-file origin
(:mod:`~airflow_provider_azerion.emulator.object_storage`), through signed links. Every response,
errors included, carries an ``x-request-id`` header, and every error, including FastAPI's own
404/405/422 and unexpected exceptions, uses Azerion's error shape.

Bodies are parsed by hand rather than with pydantic models: FastAPI would answer invalid ones with
its own 422 shape, which Azerion never sends.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import math
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from airflow_provider_azerion.emulator import images
from airflow_provider_azerion.emulator.asgi import DroppedConnection, RecordingMiddleware, note_of
from airflow_provider_azerion.emulator.errors import FAULT_ERRORS, PROXY_PAGE, APIError
from airflow_provider_azerion.emulator.faults import STATUS_FAULTS, slow_seconds
from airflow_provider_azerion.emulator.links import sign_link
from airflow_provider_azerion.emulator.rules import MODELS, PIXELS_PER_TOKEN, RESULT_BUCKET
from airflow_provider_azerion.emulator.state import EmulatorState
from airflow_provider_azerion.emulator.validation import (
    GenerationRequest,
    decode_json_object,
    parse_generation_request,
)

_NOT_AN_IMAGE = b"hello world" * 10
_INVALID_BASE64 = "%%% this is not base64 %%%"
#: Documented (create-image): the usage of Azerion's example response, all zeros.
_EMPTY_USAGE = {
    "input_tokens": 0,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
    "output_tokens": 0,
    "total_tokens": 0,
}


def create_app(state: EmulatorState) -> ASGIApp:
    """Build the API origin's ASGI app.

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
        # Inferred shape (OpenAI's list); forbidden models are listed too, so a client that checks
        # the list first still meets the 403 it must handle.
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

    return RecordingMiddleware(
        app,
        state,
        origin="api",
        request_id_header="x-request-id",
        new_request_id=lambda: f"req_{uuid.uuid4().hex}",
        failure_response=lambda request_id: _api_error_body(_internal_error()),
    )


async def _generate(request: Request, state: EmulatorState, in_flight: int) -> Response:
    note = note_of(request)
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
    generation = parse_generation_request(decode_json_object(raw_body), state.forbidden_models)
    if state.latency > 0:
        await asyncio.sleep(state.latency)
    data = [] if fault == "empty_data" else await _render(state, generation, fault)
    body = {"created": int(state.now()), "data": data, "usage": _usage(generation, len(data))}
    # Bodies of large images run to tens of megabytes: encode them off the event loop.
    content = await asyncio.to_thread(json.dumps, body)
    return _json_response(content, truncated=fault == "truncated_json")


async def _render(
    state: EmulatorState, generation: GenerationRequest, fault: str | None
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
                generation.watermark,
            )
            for index in range(generation.count)
        )
    )
    data = []
    for content in renders:
        if fault == "not_image":
            content = _NOT_AN_IMAGE
        item: dict[str, str]
        if fault == "invalid_base64":
            # Whatever response_format asked for: the point is a b64_json no decoder accepts.
            item = {"b64_json": _INVALID_BASE64}
        elif generation.response_format == "b64_json":
            item = {"b64_json": base64.b64encode(content).decode("ascii")}
        else:
            item = {"url": _store_result(state, content, content_type, generation.output_format)}
        # Documented (create-image): revised_prompt comes only "if there were any revisions".
        if state.revise_prompts:
            item["revised_prompt"] = f"{generation.prompt}, rendered by the Azerion emulator"
        data.append(item)
    return data


def _store_result(state: EmulatorState, content: bytes, content_type: str, extension: str) -> str:
    """Keep a result on the file origin and return its signed, expiring link."""
    if not state.files_url:
        raise RuntimeError("url responses need the result-file origin: start the app with EmulatorServer")
    name = f"{uuid.uuid4()}.{extension}"
    state.files.put(name, content, content_type)
    path = f"/{RESULT_BUCKET}/{name}"
    return sign_link(state.files_url, path, state.signing_key, state.now(), state.url_expiry)


def _usage(generation: GenerationRequest, image_count: int) -> dict[str, Any]:
    if not generation.model.seedream:
        return _EMPTY_USAGE
    # Inferred (Volcengine's Seedream usage): images generated, and output tokens of their pixels.
    tokens = image_count * (generation.width * generation.height // PIXELS_PER_TOKEN)
    return {"generated_images": image_count, "output_tokens": tokens, "total_tokens": tokens}


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
    # Documented (authentication): "Authorization: Bearer YOUR_API_KEY" on every request.
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
    note_of(request).fault = fault
    return fault


async def _fault_response(fault: str, state: EmulatorState) -> Response | None:
    """Answer a fault that replaces the response; ``None`` for faults that alter a normal one."""
    if fault == "drop":
        return DroppedConnection()
    if fault == "html502":
        return Response(PROXY_PAGE, status_code=502, media_type="text/html")
    if fault == "429":
        return _api_error_body(_rate_limited(state))
    if fault in STATUS_FAULTS:
        status = STATUS_FAULTS[fault]
        message, code = FAULT_ERRORS[status]
        return _api_error_body(APIError(status, message, code=code))
    delay = slow_seconds(fault)
    if delay:
        await asyncio.sleep(delay)
    return None


def _rate_limited(state: EmulatorState) -> APIError:
    # Inferred: no rate-limit header is documented; OpenAI-compatible gateways send both.
    retry_after = max(0.0, state.retry_after)
    return APIError(
        429,
        FAULT_ERRORS[429][0],
        code="rate_limit_exceeded",
        headers={
            "Retry-After": str(math.ceil(retry_after)),
            "retry-after-ms": str(round(retry_after * 1000)),
        },
    )


def _internal_error() -> APIError:
    return APIError(500, "The emulator failed unexpectedly; see its log.", code="internal_error")


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
    return _api_error_body(_internal_error())
