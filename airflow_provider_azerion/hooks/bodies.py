"""Reading responses: JSON held at most twice, downloads within a size cap, error bodies in any shape.

A successful body that breaks off after its headers raises :class:`BodyBroken`, which the call
loop treats like a lost response (resent within the budget when that is safe). Error bodies are
read at most 64 KiB, and only what a message may show is kept (no base64 runs).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion.exceptions import AzerionDownloadError, AzerionError, AzerionResponseError
from airflow_provider_azerion.redact import elide_base64

if TYPE_CHECKING:
    import requests

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-azerion-request-id", "x-tos-request-id")
_EXCERPT_CHARS = 200


def request_id(response: requests.Response) -> str | None:
    """The server's request id, from whichever header carries it."""
    for name in REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    return None


class BodyBroken(Exception):
    """The body of a response broke off after its headers (raised by a body reader)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def read_json(response: requests.Response, what: str) -> Any:
    """Read and parse the JSON body of a successful response sent with ``stream=True``.

    Generation bodies carry whole images in base64 (tens of MiB), so the body is held at most
    twice at any moment: ``response.json()`` would hold it three times (the bytes ``content``
    joined from 10 KiB chunks, its decoded text, and the parsed strings).

    :raises BodyBroken: when the body breaks off after the headers.
    :raises AzerionResponseError: when it is not JSON.
    """
    try:
        # One read into one buffer: requests' ``content`` keeps a list of chunks and joins them.
        raw = response.raw.read(decode_content=True)
    except Exception as err:  # urllib3's ProtocolError, ReadTimeoutError, DecodeError, OSError...
        raise BodyBroken(f"the response broke off after its headers ({type(err).__name__})") from None
    size = len(raw)
    encoding = response.encoding or json.detect_encoding(raw)
    try:
        text = str(raw, encoding, errors="replace")
    except LookupError:  # a charset Python does not know: JSON is UTF-8 anyway
        text = str(raw, "utf-8", errors="replace")
    del raw
    try:
        return json.loads(text)
    except ValueError:
        raise AzerionResponseError(
            f"Azerion API answered {what} with HTTP {response.status_code} but a body that is not "
            f"valid JSON ({size} bytes, possibly truncated) "
            f"[request id {request_id(response) or 'unknown'}]. The task's retries may succeed."
        ) from None


def read_limited(response: requests.Response, limit: int, host: str) -> bytes:
    """Read a download's body, refusing more than ``limit`` bytes.

    :raises BodyBroken: when the body breaks off midway.
    :raises AzerionDownloadError: when the body is larger than ``limit``.
    """
    declared = response.headers.get("Content-Length")
    too_big = AzerionDownloadError(
        f"A result image on {host} is larger than max_download_bytes={limit}; raise that setting "
        "of the connection if such images are expected.",
        host=host,
        status_code=response.status_code,
    )
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(chunk_size=1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
    except AzerionError:
        raise
    except Exception as err:
        raise BodyBroken(f"the download broke off after {size} bytes ({type(err).__name__})") from None
    return b"".join(chunks)


@dataclass(frozen=True)
class ErrorBody:
    """What an error response's body says: Azerion's JSON fields, or an excerpt of anything else.

    :param from_api: whether the body has the API's ``{"error": {...}}`` shape.
    """

    message: str
    error_type: str | None = None
    code: str | None = None
    param: str | None = None
    from_api: bool = False


def error_body(response: requests.Response) -> ErrorBody:
    """Read (at most 64 KiB of) an error body: Azerion's JSON, its variants, or HTML."""
    try:
        text_body = response.raw.read(64 * 1024, decode_content=True).decode("utf-8", "replace")
    except Exception:
        text_body = ""
    try:
        body = json.loads(text_body)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if isinstance(error, dict) and error.get("message"):

        def text(v: Any) -> str | None:
            return None if v is None else str(v)

        return ErrorBody(
            str(error["message"]),
            text(error.get("type")),
            text(error.get("code")),
            text(error.get("param")),
            from_api=True,
        )
    excerpt = elide_base64(text_body[:_EXCERPT_CHARS])
    excerpt = " ".join(re.sub(r"<[^>]+>", " ", excerpt).split()) or "(empty body)"
    return ErrorBody(f"{response.reason or 'error'} (non-JSON body: {excerpt!r})")


def xml_error_code(response: requests.Response) -> str | None:
    """The ``<Code>`` of an object store's XML error body (``AccessDenied``, ``NoSuchKey``), if any."""
    try:
        head = response.raw.read(16 * 1024, decode_content=True).decode("utf-8", "replace")
    except Exception:
        return None
    match = re.search(r"<Code>\s*([A-Za-z0-9_.-]{1,64})\s*</Code>", head)
    return match[1] if match else None
