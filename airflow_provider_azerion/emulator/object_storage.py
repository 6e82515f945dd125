"""The emulator's result-file origin: object storage serving the signed links of ``url`` responses.

Seedream's results live on Volcengine object storage (TOS), not on the API's host: links are signed
in their query string and expire (inferred from the links the same model returns elsewhere, see
``docs/API.md``). This origin behaves the same way, on its own port:

- ``GET`` (or ``HEAD``) ``/ark-content-generation/<name>?X-Tos-...`` with a valid, unexpired
  signature: 200 with the image, its ``Content-Type`` and ``Content-Length``;
- a missing or altered signature, or an expired link: 403 ``AccessDenied``;
- a valid signature for an object that is not (or no longer) kept: 404 ``NoSuchKey``.

Errors are XML, as object storage sends them, with an ``x-tos-request-id`` header. No
``Authorization`` header is needed or checked: the query string is the credential. The request log
notes whether one arrived all the same.
"""

from __future__ import annotations

import asyncio
import math
import uuid

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from airflow_provider_azerion.emulator.asgi import (
    DroppedConnection,
    RecordingMiddleware,
    TruncatedResponse,
    note_of,
)
from airflow_provider_azerion.emulator.errors import PROXY_PAGE, StorageError
from airflow_provider_azerion.emulator.faults import STATUS_FAULTS, slow_seconds
from airflow_provider_azerion.emulator.links import check_link
from airflow_provider_azerion.emulator.rules import RESULT_BUCKET
from airflow_provider_azerion.emulator.state import EmulatorState

_NOT_AN_IMAGE = b"hello world" * 10
_EXPIRED = "Request has expired."
_BAD_SIGNATURE = "The request signature we calculated does not match the signature you provided."


def create_files_app(state: EmulatorState) -> ASGIApp:
    """Build the result-file origin's ASGI app.

    :param state: Stored files, signing key, clock, faults and request log, shared with the API origin.
    :return: The app wrapped in the middleware that logs requests and sets request ids.
    """
    app = FastAPI(title="Azerion emulator result files", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(StorageError, _storage_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error_response)

    @app.api_route("/{key:path}", methods=["GET", "HEAD"])
    async def get_object(request: Request, key: str) -> Response:
        fault = state.faults.next_fault("files")
        note_of(request).fault = fault
        if fault is not None and (response := await _fault_response(fault, state, request)) is not None:
            return response
        # The signature covers the path as requested: checked before anything is looked up, so an
        # unsigned request learns nothing about which objects exist.
        check = check_link(
            request.scope["path"],
            request.scope["query_string"].decode("latin-1"),
            state.signing_key,
            state.now(),
        )
        if check.problem == "signature":
            raise StorageError(403, "AccessDenied", _BAD_SIGNATURE)
        if check.problem == "expired":
            raise StorageError(403, "AccessDenied", _EXPIRED)
        bucket, _, name = key.partition("/")
        stored = state.files.get(name) if bucket == RESULT_BUCKET else None
        if stored is None:
            raise StorageError.for_status(404)
        if fault == "not_image":
            return Response(_NOT_AN_IMAGE, media_type=stored.content_type)
        if fault == "truncated":
            return TruncatedResponse(stored.content, media_type=stored.content_type)
        return Response(stored.content, media_type=stored.content_type)

    return RecordingMiddleware(
        app,
        state,
        origin="files",
        request_id_header="x-tos-request-id",
        # TOS request ids are 24 hex digits.
        new_request_id=lambda: uuid.uuid4().hex[:24],
        failure_response=lambda request_id: _xml(StorageError.for_status(500), request_id),
    )


async def _fault_response(fault: str, state: EmulatorState, request: Request) -> Response | None:
    """Answer a fault that replaces the response; ``None`` for faults that alter a normal one."""
    request_id = note_of(request).request_id
    if fault == "drop":
        return DroppedConnection()
    if fault == "html502":
        return Response(PROXY_PAGE, status_code=502, media_type="text/html")
    if fault == "expired":
        return _xml(StorageError(403, "AccessDenied", _EXPIRED), request_id)
    if fault in STATUS_FAULTS:
        status = STATUS_FAULTS[fault]
        headers = {"Retry-After": str(math.ceil(max(0.0, state.retry_after)))} if status == 429 else None
        return _xml(StorageError.for_status(status, headers), request_id)
    delay = slow_seconds(fault)
    if delay:
        await asyncio.sleep(delay)
    return None


def _xml(error: StorageError, request_id: str) -> Response:
    return Response(
        error.body(request_id),
        status_code=error.status_code,
        headers=error.headers,
        media_type="application/xml",
    )


async def _storage_error_response(request: Request, error: StorageError) -> Response:
    return _xml(error, note_of(request).request_id)


async def _http_error_response(request: Request, error: HTTPException) -> Response:
    if error.status_code == 405:
        error_xml = StorageError(
            405, "MethodNotAllowed", "The specified method is not allowed against this resource."
        )
    elif error.status_code in (403, 404):
        error_xml = StorageError.for_status(error.status_code)
    else:
        error_xml = StorageError(error.status_code, "InvalidRequest", str(error.detail))
    return _xml(error_xml, note_of(request).request_id)


async def _unexpected_error_response(request: Request, error: Exception) -> Response:
    return _xml(StorageError.for_status(500), note_of(request).request_id)
