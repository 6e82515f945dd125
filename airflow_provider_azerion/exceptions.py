"""Errors raised by the Azerion provider.

Modelled on openai-python: one class per failure class, each carrying what a person needs to act
(status, error type and code, the server's message, the request id). Errors that no retry can fix
(bad credentials, bad requests, local validation) also derive from ``AirflowFailException``, so an
Airflow task fails at once instead of spending its retries on them. Retryable errors derive from
``AirflowException`` only and leave Airflow's task retries working.

No message here ever contains the API key or image payloads: the hook builds them from the
server's error fields and a short, sanitised excerpt of non-JSON bodies.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class AzerionError(AirflowException):
    """Base class of every error this provider raises."""

    #: Whether repeating the same call later may succeed (drives ``AzerionRetryPolicy``).
    retryable: bool = True


class AzerionConfigurationError(AzerionError, AirflowFailException):
    """The provider is set up wrongly (no API key, malformed base URL...): fix the connection."""

    retryable = False


class AzerionValidationError(AzerionError, AirflowFailException, ValueError):
    """An argument was rejected locally, before any request was sent."""

    retryable = False


class AzerionAPIError(AzerionError):
    """The Azerion API answered with an error status.

    :param status_code: HTTP status of the response.
    :param message: the server's human-readable message, or an excerpt of a non-JSON body.
    :param error_type: the ``error.type`` field of the body, if any.
    :param code: the ``error.code`` field of the body, if any (always a str).
    :param param: the ``error.param`` field of the body, if any.
    :param request_id: the server's request id header, if it sent one.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status_code = status_code  # type: ignore[assignment]  # AirflowException types it HTTPStatus
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param
        self.request_id = request_id
        super().__init__(self._describe())

    def _describe(self) -> str:
        label = self.code or self.error_type or "error"
        text = f"Azerion API {self.status_code} {label}: {self.message}"
        if self.param:
            text += f" (param: {self.param})"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        hint = self.hint()
        return f"{text}. {hint}" if hint else text

    def hint(self) -> str:
        """What the user should do about this error."""
        return ""

    def __reduce__(self):  # keep keyword-only fields when pickled across processes
        return (
            _rebuild_api_error,
            (
                type(self),
                self.status_code,
                self.message,
                {
                    "error_type": self.error_type,
                    "code": self.code,
                    "param": self.param,
                    "request_id": self.request_id,
                    **self._extra_state(),
                },
            ),
        )

    def _extra_state(self) -> dict:
        return {}


def _rebuild_api_error(cls, status_code, message, kwargs):
    return cls(status_code, message, **kwargs)


class AzerionAuthenticationError(AzerionAPIError, AirflowFailException):
    """401 or 403: the API key is missing, wrong, expired or lacks permission."""

    retryable = False

    def hint(self) -> str:
        return (
            "Check the API key in the connection's password field (or AZERION_API_KEY) "
            "and that it may use this model"
        )


class AzerionBadRequestError(AzerionAPIError, AirflowFailException):
    """400, 404 or 422: the request itself is wrong (unknown model, bad parameter...)."""

    retryable = False

    def hint(self) -> str:
        return "Fix the request parameters; retrying the same request will fail the same way"


class AzerionRateLimitError(AzerionAPIError):
    """429: too many requests. ``retry_after`` is the server's advised wait in seconds, if any."""

    def __init__(self, status_code: int, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        self.retry_after = retry_after
        super().__init__(status_code, message, **kwargs)

    def hint(self) -> str:
        wait = f" (server asked to wait {self.retry_after:g} s)" if self.retry_after is not None else ""
        return (
            f"Rate limit still exceeded after the hook's retries{wait}; lower max_active_requests "
            "or put the tasks in an Airflow pool"
        )

    def _extra_state(self) -> dict:
        return {"retry_after": self.retry_after}


class AzerionServerError(AzerionAPIError):
    """5xx: the API failed on its side. Task retries may succeed later."""

    def hint(self) -> str:
        return "The Azerion API failed on its side after the hook's retries; task retries may succeed later"


class AzerionConnectionError(AzerionError):
    """No usable HTTP response: the host was unreachable, the connection dropped or timed out.

    :param message: what happened, without the key.
    :param request_sent: ``True`` when the request may have reached the server before the
        failure, so a generation may have been billed.
    """

    def __init__(self, message: str, *, request_sent: bool = False) -> None:
        self.message = message
        self.request_sent = request_sent
        super().__init__(message)

    def __reduce__(self):
        return (_rebuild_connection_error, (type(self), self.message, self.request_sent))


def _rebuild_connection_error(cls, message, request_sent):
    return cls(message, request_sent=request_sent)


class AzerionResponseError(AzerionError):
    """The API answered 200 but the body is unusable (truncated JSON, no images, bad image data)."""


ERROR_CLASS_BY_STATUS: dict[int, type[AzerionAPIError]] = {
    400: AzerionBadRequestError,
    401: AzerionAuthenticationError,
    403: AzerionAuthenticationError,
    404: AzerionBadRequestError,
    422: AzerionBadRequestError,
    429: AzerionRateLimitError,
}


def error_class_for_status(status_code: int) -> type[AzerionAPIError]:
    """Pick the exception class for an HTTP error status."""
    if status_code in ERROR_CLASS_BY_STATUS:
        return ERROR_CLASS_BY_STATUS[status_code]
    if status_code >= 500:
        return AzerionServerError
    return AzerionAPIError
