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

from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_azerion.constants import DEFAULT_BASE_URL


class AzerionError(AirflowException):
    """Base class of every error this provider raises."""

    #: Whether repeating the same call later may succeed (drives ``AzerionRetryPolicy``).
    retryable: bool = True
    #: Where the error happened (e.g. ``prompt 3 ('a red fox')``), set by :meth:`add_context`.
    context: str | None = None

    def add_context(self, where: str) -> None:
        """Prefix the message with ``where`` (once), keeping the type and every field.

        The prefix survives a pickle: Airflow ships exceptions between processes, and each
        subclass's ``__reduce__`` passes the instance's ``__dict__`` on as its state.
        """
        if self.context is None:
            self._plain_message = str(self)
        self.context = where
        self.args = (f"{where}: {self._plain_message}",)

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        self.__dict__.update(state or {})
        if self.context is not None:
            self.args = (f"{self.context}: {self._plain_message}",)


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
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code  # type: ignore[assignment]  # AirflowException types it HTTPStatus
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param
        self.request_id = request_id
        #: The server's advised wait in seconds (``Retry-After``), if it sent one.
        self.retry_after = retry_after
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
                    "retry_after": self.retry_after,
                },
            ),
            self.__dict__,
        )


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
    """A 4xx other than 401, 403, 408, 409 and 429: the request itself is wrong or cannot be served.

    400, 404 (e.g. unknown model) and 422 are the documented ones; any other 4xx (402, 405, 413,
    415...) is final too: the same request would fail the same way.
    """

    retryable = False

    def hint(self) -> str:
        if self.status_code == 402:
            return "The account may be out of prepaid credits; top them up in the Azerion console"
        if self.status_code == 413:
            return "The request is too large for the API; shorten the prompt or send fewer reference images"
        return "Fix the request parameters; retrying the same request will fail the same way"


class AzerionBaseURLError(AzerionBadRequestError, AzerionConfigurationError):
    """404 or 405 on a path the hook always uses: the connection's base URL points elsewhere."""

    retryable = False

    def hint(self) -> str:
        return (
            f"The connection's base URL looks wrong: it should be the API's, e.g. {DEFAULT_BASE_URL} "
            "(the hook appends images/generations and models to it)"
        )


class AzerionRateLimitError(AzerionAPIError):
    """429: too many requests. ``retry_after`` is the server's advised wait in seconds, if any."""

    def hint(self) -> str:
        if self.retry_after is not None:
            return (
                f"The server asked to wait {self.retry_after:g} s; the hook stops at once when that is "
                "longer than max_retry_wait, and AzerionRetryPolicy retries the task after that wait. "
                "Lower max_active_requests or put the tasks in an Airflow pool"
            )
        return (
            "Rate limit still exceeded after the hook's retries; lower max_active_requests "
            "or put the tasks in an Airflow pool"
        )


class AzerionServerError(AzerionAPIError):
    """5xx, 408 or 409: the API failed on its side or was busy. Task retries may succeed later."""

    def hint(self) -> str:
        if self.retry_after is not None:
            return (
                f"The Azerion API failed on its side and asked to wait {self.retry_after:g} s; "
                "task retries may succeed later"
            )
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
        return (_rebuild_connection_error, (type(self), self.message, self.request_sent), self.__dict__)


def _rebuild_connection_error(cls, message, request_sent):
    return cls(message, request_sent=request_sent)


class AzerionResponseError(AzerionError):
    """The API answered 200 but the body is unusable (truncated JSON, no images, bad image data)."""


class AzerionDownloadError(AzerionError):
    """A result link (``response_format="url"``) could not be fetched.

    Result links are signed object-storage URLs on another host that expire (about a day): a 403
    there means an expired or altered link, not a wrong API key. The image was generated, but its
    link is gone; a task retry generates it again, so this error leaves the task's retries working.

    :param message: what happened, naming the host and never the link's query string.
    :param host: the host the link points to.
    :param status_code: the HTTP status the host answered, if it answered.
    """

    def __init__(self, message: str, *, host: str = "", status_code: int | None = None) -> None:
        self.message = message
        self.host = host
        self.status_code = status_code  # type: ignore[assignment]
        super().__init__(message)

    def __reduce__(self):
        return (
            _rebuild_download_error,
            (type(self), self.message, self.host, self.status_code),
            self.__dict__,
        )


def _rebuild_download_error(cls, message, host, status_code):
    return cls(message, host=host, status_code=status_code)


class AzerionStorageError(AzerionError, AirflowFailException):
    """The output location cannot be written, for a reason no retry heals.

    Raised before the first generation (nothing was paid for): a path that is not a folder, a
    read-only file system, a folder the worker's user may not write, a bucket that does not exist
    or refuses the credentials. Fix ``output_path`` or ``output_conn_id`` (or the store's
    permissions), then clear the task.
    """

    retryable = False


class AzerionCancelledError(AzerionConnectionError):
    """The call was stopped because its task was killed or timed out (``on_kill``)."""


#: The one table of what an API error status means; each class's ``retryable`` says whether the
#: hook sends the same request again (``hooks.errors.is_retryable_status``) and whether
#: ``AzerionRetryPolicy`` lets the task try again. Statuses not listed: see error_class_for_status.
ERROR_CLASS_BY_STATUS: dict[int, type[AzerionAPIError]] = {
    401: AzerionAuthenticationError,
    403: AzerionAuthenticationError,
    408: AzerionServerError,
    409: AzerionServerError,
    429: AzerionRateLimitError,
}


def error_class_for_status(status_code: int) -> type[AzerionAPIError]:
    """Pick the exception class for an HTTP error status of the API itself.

    401/403 are the key's fault, 429 a rate limit; 408, 409 and 5xx are the server's (retryable);
    every other 4xx is a request no retry can fix.
    """
    if status_code in ERROR_CLASS_BY_STATUS:
        return ERROR_CLASS_BY_STATUS[status_code]
    if status_code >= 500:
        return AzerionServerError
    if 400 <= status_code < 500:
        return AzerionBadRequestError
    return AzerionAPIError
