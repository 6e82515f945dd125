"""The two error shapes the emulator answers in: Azerion's JSON, and object storage's XML.

The API origin answers every error as the error-codes page documents
(https://docs.azerion.ai/api-reference/error-codes)::

    {"error": {"message": str, "type": str, "code": str, "param": str | null, "status_code": int}}

The result-file origin is object storage, not Azerion: like Volcengine TOS (and S3) it answers
``application/xml`` such as ``<Error><Code>AccessDenied</Code>...</Error>``. Inferred: no Azerion
page shows a result link failing.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

#: Documented (error-codes): the statuses the API answers with, and what they mean. The messages and
#: codes below are inferred (OpenAI's wording, which Azerion's gateway mirrors).
FAULT_ERRORS = {
    400: ("Invalid request: the request is malformed or misses required fields.", "invalid_request"),
    401: ("Incorrect API key provided.", "invalid_api_key"),
    403: ("Your API key does not have permission to perform this request.", "insufficient_permissions"),
    404: ("The requested resource does not exist or you do not have access to it.", "not_found"),
    422: ("The request is well-formed but semantically incorrect.", "unprocessable_entity"),
    429: ("Rate limit exceeded. Please retry after a short wait.", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "internal_server_error"),
    # 502 and 504 are not on the error-codes page; a gateway in front of model providers sends them.
    502: ("Bad gateway: the upstream model provider returned an invalid response.", "bad_gateway"),
    503: ("The service is temporarily unavailable. Please try again later.", "service_unavailable"),
    504: ("Gateway timeout: the upstream model provider did not answer in time.", "gateway_timeout"),
}

#: Inferred (object storage's codes for these statuses, as TOS and S3 name them).
STORAGE_ERRORS = {
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    429: ("TooManyRequests", "Request rate exceeded, please slow down."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "The gateway received an invalid response."),
    503: ("ServiceUnavailable", "Service is unable to handle the request. Please try again."),
    504: ("GatewayTimeout", "The gateway did not receive a response in time."),
}

#: The ``html502`` fault: what a reverse proxy answers when the service behind it fails.
PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class APIError(Exception):
    """An error answered in Azerion's JSON shape.

    :param status_code: HTTP status.
    :param message: Human-readable message; never contains the caller's API key.
    :param code: Machine-readable code, e.g. ``"model_not_found"``.
    :param param: The request parameter at fault, if any.
    :param error_type: Error type; derived from the status when not given.
    :param headers: Extra response headers, e.g. ``Retry-After``.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        code: str,
        param: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type or error_type_for(status_code)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "code": self.code,
                "param": self.param,
                "status_code": self.status_code,
            }
        }


def error_type_for(status_code: int) -> str:
    """Return the error ``type`` for an HTTP status.

    Inferred: the error-codes page shows ``type`` only as ``"error_type"``; these are OpenAI's names.
    """
    if status_code >= 500:
        return "server_error"
    return {
        401: "authentication_error",
        403: "permission_error",
        429: "rate_limit_error",
    }.get(status_code, "invalid_request_error")


class StorageError(Exception):
    """An error of the result-file origin, answered in object storage's XML shape.

    :param status_code: HTTP status.
    :param code: Object-storage error code, e.g. ``"AccessDenied"``.
    :param message: Human-readable message; never contains the link's query string.
    :param headers: Extra response headers.
    """

    def __init__(
        self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers or {}

    @classmethod
    def for_status(cls, status_code: int, headers: dict[str, str] | None = None) -> StorageError:
        """The error object storage sends for ``status_code``, with its usual code and message."""
        code, message = STORAGE_ERRORS[status_code]
        return cls(status_code, code, message, headers)

    def body(self, request_id: str) -> bytes:
        """Return the XML error document."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            f"<RequestId>{escape(request_id)}</RequestId></Error>"
        ).encode()
