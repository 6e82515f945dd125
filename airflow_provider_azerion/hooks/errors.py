"""How a call that ended badly becomes the typed error a person reads, and which statuses to retry.

- An HTTP status picks its class from the one table,
  :func:`~airflow_provider_azerion.exceptions.error_class_for_status`; the class's ``retryable``
  says whether the hook sends the same request again (:func:`is_retryable_status`), as it tells
  ``AzerionRetryPolicy`` whether the task should.
- A request with no usable response becomes a :class:`Failure` (:func:`classify`): was anything
  sent, may trying again help.
- :class:`ApiErrors` and :class:`DownloadErrors` turn either into the final exception, with advice.

Every text taken from a response or from a ``requests``/urllib3 exception passes through
:func:`~airflow_provider_azerion.redact.scrub` with the key, so no message holds the key or the
query string of a signed link.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion.exceptions import (
    AzerionBaseURLError,
    AzerionCancelledError,
    AzerionConnectionError,
    AzerionDownloadError,
    AzerionError,
    error_class_for_status,
)
from airflow_provider_azerion.hooks.bodies import error_body, request_id, xml_error_code
from airflow_provider_azerion.hooks.retry import parse_retry_after
from airflow_provider_azerion.redact import public_uri, scrub, strip_query

if TYPE_CHECKING:
    import requests

    from airflow_provider_azerion.hooks.retry import Attempts

#: Most model ids a ``model_not_found`` error lists.
MAX_LISTED_MODELS = 20
_TEXT_CHARS = 300


def is_retryable_status(status: int) -> bool:
    """Whether the same request may succeed after an answer with ``status`` (408, 409, 429, 5xx)."""
    return error_class_for_status(status).retryable


@dataclass(frozen=True)
class Failure:
    """A request that got no usable HTTP response.

    :param description: what happened, scrubbed (no query string, no key).
    :param request_sent: ``False`` only when nothing reached the server.
    :param retryable: whether trying again may help at all (a TLS or URL error will not).
    :param timeout: whether it was a timeout (connect or read).
    """

    description: str
    request_sent: bool
    retryable: bool = True
    timeout: bool = False


def classify(err: Exception, timeout: tuple[float, float], key: str | None) -> Failure:
    """The :class:`Failure` of a request that raised ``err`` (from requests, or below it unwrapped)."""
    import requests

    if not isinstance(err, requests.RequestException):
        text = scrub(f"{type(err).__name__}: {err}", key)[:_TEXT_CHARS]
        if isinstance(err, ValueError):  # http.client refusing a header or URL: nothing was sent
            return Failure(f"the request was refused before sending ({text})", False, retryable=False)
        return Failure(text, True, retryable=False)
    text = scrub(_root_cause(err), key)[:_TEXT_CHARS]
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return Failure(f"no connection within {timeout[0]:g} s", False, timeout=True)
    if isinstance(err, requests.exceptions.ReadTimeout):
        return Failure(f"no response within {timeout[1]:g} s", True, timeout=True)
    if isinstance(err, requests.exceptions.SSLError):
        return Failure(f"TLS error ({text})", False, retryable=False)
    if isinstance(err, requests.exceptions.ProxyError):
        return Failure(f"proxy error ({text})", False)
    if isinstance(err, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return Failure(f"the response broke off ({text})", True)
    if isinstance(err, requests.exceptions.ConnectionError):
        if _never_sent(err):
            return Failure(text, False)
        return Failure(f"connection dropped ({text})", True)
    if isinstance(err, requests.exceptions.TooManyRedirects):
        return Failure("too many redirects", True, retryable=False)
    if isinstance(
        err,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.URLRequired,
            requests.exceptions.InvalidHeader,
        ),
    ):
        return Failure(f"invalid URL or header ({type(err).__name__})", False, retryable=False)
    return Failure(f"{type(err).__name__} ({text})", True, retryable=False)


class CallErrors:
    """Builds the exceptions of one kind of call; the call loop asks it when the call must end.

    :param what: the call, e.g. ``"POST /images/generations"`` (never a query string).
    """

    def __init__(self, what: str) -> None:
        self.what = what

    def for_status(self, response: requests.Response, attempts: Attempts) -> AzerionError:
        """The error for an HTTP error status that will not be retried (any more).

        Reads the error body and closes the response.
        """
        raise NotImplementedError

    def for_failure(self, failure: Failure, method: str, attempts: Attempts) -> AzerionError:
        """The error for a request that got no usable response and will not be sent again."""
        raise NotImplementedError

    def cancelled(self, method: str, sent: bool) -> AzerionCancelledError:
        """The error of a call stopped by a cancel (the task is being killed or timed out)."""
        billed = (
            "; a request already sent may have been billed." if sent and method.upper() == "POST" else "."
        )
        return AzerionCancelledError(
            f"{self.what} was stopped because the task is being stopped (killed or timed out){billed}",
            request_sent=sent,
        )


class ApiErrors(CallErrors):
    """Errors of calls to the API itself.

    :param what: the call, e.g. ``"POST /images/generations"``.
    :param base_url: the API base URL, shown (without user info or query) when it looks wrong.
    :param key: the API key, masked in every text.
    :param retry_on_timeout: the hook's setting, for the advice on a lost response.
    :param list_models: returns the ids ``GET /models`` lists; a ``model_not_found`` error names them.
    """

    def __init__(
        self,
        what: str,
        base_url: str,
        key: str,
        retry_on_timeout: bool,
        list_models: Callable[[], list[str]] | None = None,
    ) -> None:
        super().__init__(what)
        self.base_url = base_url
        self.key = key
        self.retry_on_timeout = retry_on_timeout
        self.list_models = list_models

    def for_status(self, response: requests.Response, attempts: Attempts) -> AzerionError:
        status = response.status_code
        with response:
            body = error_body(response)
        message = scrub(body.message, self.key)
        cls = error_class_for_status(status)
        if status == 405 or (status == 404 and (body.code == "unknown_url" or not body.from_api)):
            cls = AzerionBaseURLError
            message = f"{message} (base URL {public_uri(self.base_url)})"
        elif body.code == "model_not_found":
            message += self._listed_models()
        return cls(
            status,
            message,
            error_type=body.error_type,
            code=body.code,
            param=body.param,
            request_id=request_id(response),
            retry_after=parse_retry_after(response.headers),
        )

    def _listed_models(self) -> str:
        if self.list_models is None:
            return ""
        try:
            ids = [scrub(str(model_id)[:80], self.key) for model_id in self.list_models()]
        except Exception:  # the original error says enough on its own
            return ""
        if not ids:
            return ""
        more = f" and {len(ids) - MAX_LISTED_MODELS} more" if len(ids) > MAX_LISTED_MODELS else ""
        return f" Models listed for this key: {', '.join(ids[:MAX_LISTED_MODELS])}{more}."

    def for_failure(self, failure: Failure, method: str, attempts: Attempts) -> AzerionError:
        tries = f"after {attempts.used} attempt(s)"
        if not failure.request_sent:
            return AzerionConnectionError(
                f"Could not reach the Azerion API for {self.what} {tries} ({failure.description}). "
                f"Check the connection's host (now {public_uri(self.base_url)}) and the network; "
                "nothing was sent."
            )
        if method.upper() == "POST" and not self.retry_on_timeout:
            advice = (
                "The server may have generated and billed the image already, so the hook did not "
                "resend it. Raise read_timeout, or set retry_on_timeout=True to resend automatically."
            )
        else:
            advice = "The task's retries may succeed later."
        if attempts.used > 1:
            advice = f"Sent {attempts.used} times. {advice}"
        return AzerionConnectionError(
            f"Azerion API {self.what}: {failure.description}. {advice}", request_sent=True
        )


class DownloadErrors(CallErrors):
    """Errors of result-link downloads: the link's host, never its query, and what a retry does.

    :param url: the result link.
    """

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        super().__init__(f"GET {strip_query(url)}")
        self.host = urlsplit(url).hostname or "?"

    def for_status(self, response: requests.Response, attempts: Attempts) -> AzerionError:
        status = response.status_code
        with response:
            code = xml_error_code(response)
        detail = f"HTTP {status}" + (f" {code}" if code else "")
        if status in (401, 403):
            why = "the signed link may have expired (result links last about a day) or been altered"
        elif status == 404:
            why = "the object is gone from the result store, or the link is wrong"
        else:
            why = f"after {attempts.used} attempt(s)"
        return AzerionDownloadError(
            f"Could not download a result image from {self.host}: {detail}; {why}. The image was "
            "generated but could not be fetched; a task retry generates it again. This is not a "
            "problem with the API key (it is never sent to that host).",
            host=self.host,
            status_code=status,
        )

    def for_failure(self, failure: Failure, method: str, attempts: Attempts) -> AzerionError:
        return AzerionDownloadError(
            f"Could not download a result image from {self.host}: {failure.description} after "
            f"{attempts.used} attempt(s). The image was generated but could not be fetched; a task "
            "retry generates it again.",
            host=self.host,
        )


def _never_sent(err: Exception) -> bool:
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    cause: Any = err.args[0] if err.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError))


def _root_cause(err: BaseException) -> str:
    """The innermost urllib3/socket error of ``err`` as ``"Type: message"``, without object reprs."""
    cause: Any = err.args[0] if err.args else err
    cause = getattr(cause, "reason", cause)
    message = getattr(cause, "_message", None)  # urllib3's NewConnectionError, without the conn repr
    if isinstance(message, str):
        return f"{type(cause).__name__}: {message}"
    if getattr(cause, "args", None) and len(cause.args) > 1 and isinstance(cause.args[1], BaseException):
        cause = cause.args[1]
    text = re.sub(r"<[^>]*>: ", "", str(cause))
    return f"{type(cause).__name__}: {text}"
