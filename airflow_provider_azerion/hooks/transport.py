"""How the hook speaks HTTP: the session, the key, the one retry loop, and error mapping.

:class:`Transport` owns a pooled ``requests.Session`` whose adapter never retries on its own
(urllib3's retries are off): every request of a call goes through :meth:`Transport.call`, whose
loop follows :class:`~.retry.RetryRules` with one budget of ``max_attempts`` requests, counting
failed statuses, lost connections and bodies that broke off alike.

What it guarantees:

- The API key is sent only to the API's own origin (scheme, host and port): result links live on
  object storage elsewhere and must never see it.
- No text it produces (logs, exceptions) holds the key or the query string of a URL: signed result
  links carry their credentials there.
- Every failure leaves as an ``AzerionError`` subclass; no ``requests`` exception escapes.
- :meth:`Transport.cancel` stops every call at once: waits end, sockets in use are shut down,
  and the calls raise :class:`~airflow_provider_azerion.exceptions.AzerionCancelledError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_azerion.exceptions import (
    AzerionCancelledError,
    AzerionConnectionError,
    AzerionDownloadError,
    AzerionError,
    AzerionResponseError,
    error_class_for_status,
)
from airflow_provider_azerion.hooks.retry import (
    Attempts,
    RetryRules,
    is_retryable_status,
    parse_retry_after,
)

if TYPE_CHECKING:
    import requests

T = TypeVar("T")

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-azerion-request-id", "x-tos-request-id")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{80,}")
_URL_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>?#]*)[?#][^\s'\"<>]*")
_ERROR_EXCERPT_CHARS = 200

_default_log = logging.getLogger(__name__)


def strip_query(url: str) -> str:
    """``url`` without its query string and fragment (they may hold a signature)."""
    return re.split(r"[?#]", url, maxsplit=1)[0]


def scrub(text: str, secret: str | None = None) -> str:
    """``text`` with every URL's query string elided and ``secret`` (the key) masked."""
    text = _URL_QUERY.sub(lambda m: f"{m.group(1)}?<query elided>", text)
    if secret:
        text = text.replace(secret, "***")
    return text


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, lower-case host and port (default ports filled in) of ``url``."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def request_id(response: requests.Response) -> str | None:
    """The server's request id, from whichever header carries it."""
    for name in REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    return None


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


class BodyBroken(Exception):
    """The body of a response broke off after its headers (raised by a body reader)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class ErrorBuilder:
    """Turns the ways a call can end badly into the exception a user sees.

    :param what: the call, e.g. ``"POST /v1/images/generations"`` (never a query string).
    :param transport: the transport, for its settings and the key to mask.
    """

    def __init__(self, what: str, transport: Transport) -> None:
        self.what = what
        self.transport = transport

    def for_status(self, response: requests.Response, attempts: Attempts) -> AzerionError:
        """The error for an HTTP error status that will not be retried (any more)."""
        error_type, code, param, message = parse_error_body(response)
        cls = error_class_for_status(response.status_code)
        return cls(
            response.status_code,
            scrub(message, self.transport.key),
            error_type=error_type,
            code=code,
            param=param,
            request_id=request_id(response),
            retry_after=parse_retry_after(response.headers),
        )

    def for_failure(self, failure: Failure, method: str, attempts: Attempts) -> AzerionError:
        """The error for a request that got no usable response and will not be sent again."""
        tries = f"after {attempts.used} attempt(s)"
        if not failure.request_sent:
            return AzerionConnectionError(
                f"Could not reach the Azerion API for {self.what} {tries} ({failure.description}). "
                f"Check the connection's host (now {self.transport.base_url}) and the network; "
                "nothing was sent."
            )
        if method.upper() == "POST" and not self.transport.rules.retry_on_timeout:
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


class DownloadErrors(ErrorBuilder):
    """Errors of result-link downloads: the link's host, never its query, and what a retry does."""

    def __init__(self, url: str, transport: Transport) -> None:
        super().__init__(f"GET {strip_query(url)}", transport)
        self.host = urlsplit(url).hostname or "?"

    def for_status(self, response: requests.Response, attempts: Attempts) -> AzerionError:
        status = response.status_code
        code = _xml_error_code(response)
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


class _QueryScrubber(logging.Filter):
    """Elides query strings from urllib3's DEBUG lines (``"GET /path?X-Tos-Signature=..."``)."""

    _REQUEST_LINE = re.compile(r'("[A-Z]+ [^\s?"]*)\?[^\s"]*')

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if "?" in message:
            record.msg, record.args = self._REQUEST_LINE.sub(r"\1?<query elided>", message), ()
        return True


def _install_log_scrubber() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _QueryScrubber) for f in logger.filters):
        logger.addFilter(_QueryScrubber())


class Transport:
    """The hook's HTTP machinery for one base URL and key. Safe to share between threads.

    :param base_url: the API base URL; only its origin receives the key.
    :param key: the API key.
    :param rules: retry rules of every call.
    :param timeout: ``(connect, read)`` timeouts in seconds.
    :param pool_maxsize: connections kept per host.
    :param user_agent: the ``User-Agent`` header.
    :param logger: where retries are logged (the hook's task logger).
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        rules: RetryRules,
        timeout: tuple[float, float],
        pool_maxsize: int,
        user_agent: str,
        logger: Any = None,
    ) -> None:
        self.base_url = base_url
        self.key = key
        self.rules = rules
        self.timeout = timeout
        self.log = logger or _default_log
        self._cancelled = threading.Event()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._sockets_lock = threading.Lock()
        #: TCP connections opened so far (a pool too small for its threads opens many more).
        self.connections_opened = 0
        _install_log_scrubber()
        self.session = self._build_session(pool_maxsize, user_agent)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    # -- session and sockets -----------------------------------------------------------------------

    def _build_session(self, pool_maxsize: int, user_agent: str) -> requests.Session:

        session = _session_class()()
        adapter = _tracking_adapter_class()(self, pool_connections=4, pool_maxsize=pool_maxsize)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        session.auth = BearerAuth(self.key, self.base_url)
        # Proxies and CA bundles from the environment still apply (trust_env stays on), read once
        # per origin (see _session_class); the key's BearerAuth means netrc is never consulted.
        return session

    def track(self, sock: socket.socket) -> None:
        """Remember a connected socket so :meth:`cancel` can shut it down."""
        with self._sockets_lock:
            self.connections_opened += 1
            self._sockets.add(sock)
        if self._cancelled.is_set():
            _shutdown(sock)

    def cancel(self) -> None:
        """Stop every call now: no more requests or waits, and sockets in use are shut down."""
        self._cancelled.set()
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    # -- the call loop -----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        url: str,
        read: Callable[[requests.Response], T],
        errors: ErrorBuilder,
        **kwargs: Any,
    ) -> T:
        """Send one call, retrying within one budget; return what ``read`` makes of the response.

        :param method: HTTP method.
        :param url: absolute URL.
        :param read: reads a successful response's body; raises :class:`BodyBroken` when the body
            breaks off (retried like a lost response) or an ``AzerionError`` (final).
        :param errors: builds the final exceptions.
        :param kwargs: passed to ``requests.Session.request`` (``json``, ``headers``...).
        """
        import requests

        attempts = self.rules.attempts()
        kwargs.setdefault("timeout", self.timeout)
        while True:
            self._raise_if_cancelled(errors, method, sent=attempts.used > 0)
            attempts.start()
            failure: Failure | None = None
            advised: float | None = None
            try:
                response = self.session.request(method, url, stream=True, **kwargs)
            except requests.RequestException as err:
                failure = self._classify(err)
            except (OSError, ValueError) as err:  # anything below requests that it did not wrap
                failure = Failure(scrub(f"{type(err).__name__}: {err}", self.key)[:300], True, False)
            else:
                if response.status_code >= 400:
                    status = response.status_code
                    if not is_retryable_status(status):
                        raise _closing(response, errors.for_status(response, attempts))
                    advised = parse_retry_after(response.headers)
                    wait = attempts.wait_before_retry(advised)
                    if wait is None or self.cancelled:
                        raise _closing(response, errors.for_status(response, attempts))
                    response.close()
                    self._sleep(wait, attempts, f"HTTP {status}", method, url, advised, errors)
                    continue
                try:
                    with response:
                        return read(response)
                except BodyBroken as err:
                    failure = Failure(err.description, request_sent=True)
            self._raise_if_cancelled(errors, method, sent=True)
            if not failure.retryable or not self.rules.may_resend(method, failure.request_sent):
                raise errors.for_failure(failure, method, attempts)
            wait = attempts.wait_before_retry(None)
            if wait is None:
                raise errors.for_failure(failure, method, attempts)
            self._sleep(wait, attempts, failure.description, method, url, None, errors)

    def _sleep(
        self,
        wait: float,
        attempts: Attempts,
        what: str,
        method: str,
        url: str,
        advised: float | None,
        errors: ErrorBuilder,
    ) -> None:
        self.log.info(
            "Azerion %s %s failed with %s; retry %d of %d in %.2f s%s",
            method,
            strip_query(url),
            what,
            attempts.used,
            attempts.rules.max_attempts - 1,
            wait,
            " (server's Retry-After)" if advised is not None else "",
        )
        if self._cancelled.wait(wait):
            self._raise_if_cancelled(errors, method, sent=True)

    def _raise_if_cancelled(self, errors: ErrorBuilder, method: str, sent: bool) -> None:
        if self._cancelled.is_set():
            raise AzerionCancelledError(
                f"{errors.what} was stopped because the task is being stopped (killed or timed out)"
                + (
                    "; a request already sent may have been billed."
                    if sent and method.upper() == "POST"
                    else "."
                ),
                request_sent=sent,
            )

    def _classify(self, err: Exception) -> Failure:
        import requests

        cause = _root_cause(err)
        text = scrub(cause, self.key)[:300]
        if isinstance(err, requests.exceptions.ConnectTimeout):
            return Failure(f"no connection within {self.timeout[0]:g} s", False, timeout=True)
        if isinstance(err, requests.exceptions.ReadTimeout):
            return Failure(f"no response within {self.timeout[1]:g} s", True, timeout=True)
        if isinstance(err, requests.exceptions.SSLError):
            return Failure(f"TLS error ({text})", False, retryable=False)
        if isinstance(err, requests.exceptions.ProxyError):
            return Failure(f"proxy error ({text})", False)
        if isinstance(
            err, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
        ):
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


class BearerAuth:
    """Adds ``Authorization: Bearer`` only to requests for the API's own origin.

    Result URLs live on object storage elsewhere: the key must never travel there. Redirects to
    another host lose the header too (``requests`` strips it, and this adds it back only for the
    API's origin).
    """

    def __init__(self, key: str, base_url: str) -> None:
        self._key = key
        self._origin = origin(base_url)

    def __call__(self, request: Any) -> Any:
        if origin(request.url) == self._origin:
            request.headers["Authorization"] = f"Bearer {self._key}"
        else:
            request.headers.pop("Authorization", None)
        return request

    def __repr__(self) -> str:
        return f"BearerAuth(origin={self._origin!r})"


# -- reading bodies --------------------------------------------------------------------------------


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


def parse_error_body(response: requests.Response) -> tuple[str | None, str | None, str | None, str]:
    """Error type, code, param and message from any error body: Azerion's JSON, variants, or HTML."""
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

        return (
            text(error.get("type")),
            text(error.get("code")),
            text(error.get("param")),
            str(error["message"]),
        )
    excerpt = _BASE64_RUN.sub("<data elided>", text_body[:_ERROR_EXCERPT_CHARS])
    excerpt = " ".join(re.sub(r"<[^>]+>", " ", excerpt).split()) or "(empty body)"
    return None, None, None, f"{response.reason or 'error'} (non-JSON body: {excerpt!r})"


def _xml_error_code(response: requests.Response) -> str | None:
    """The ``<Code>`` of an object store's XML error body (``AccessDenied``, ``NoSuchKey``), if any."""
    try:
        head = response.raw.read(16 * 1024, decode_content=True).decode("utf-8", "replace")
    except Exception:
        return None
    match = re.search(r"<Code>\s*([A-Za-z0-9_.-]{1,64})\s*</Code>", head)
    return match[1] if match else None


# -- helpers ---------------------------------------------------------------------------------------


def _closing(response: requests.Response, error: AzerionError) -> AzerionError:
    response.close()
    return error


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _never_sent(err: Exception) -> bool:
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    cause: Any = err.args[0] if err.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError))


def _root_cause(err: BaseException) -> str:
    cause: Any = err.args[0] if err.args else err
    cause = getattr(cause, "reason", cause)
    message = getattr(cause, "_message", None)  # urllib3's NewConnectionError, without the conn repr
    if isinstance(message, str):
        return f"{type(cause).__name__}: {message}"
    if getattr(cause, "args", None) and len(cause.args) > 1 and isinstance(cause.args[1], BaseException):
        cause = cause.args[1]
    text = str(cause)
    # urllib3 messages embed object reprs; keep the human part.
    text = re.sub(r"<[^>]*>: ", "", text)
    return f"{type(cause).__name__}: {text}"


_ADAPTER_CLASS: type | None = None
_SESSION_CLASS: type | None = None


def _session_class() -> type:
    """``requests.Session`` that reads proxy and CA-bundle settings from the environment once per origin.

    With ``trust_env`` on, requests scans the whole environment (``*_proxy`` variables, then
    ``no_proxy``) on every request: about 0.5 ms of CPU each with the 70 variables of a small
    container, more in a Kubernetes pod with hundreds of service variables, and as much as the
    rest of a small generation request costs the client. The environment of a task does not change
    while it runs, so the result is kept per origin (scheme, host and port: what ``no_proxy``
    matches on) together with the session settings it was merged with. Calls that pass their own
    ``proxies``, ``verify`` or ``cert``, and redirects (``rebuild_proxies``), take requests' own
    path unchanged.
    """
    global _SESSION_CLASS
    if _SESSION_CLASS is not None:
        return _SESSION_CLASS
    from urllib.parse import urlsplit

    import requests

    class EnvironmentOnceSession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self._environment: dict[tuple[Any, ...], Any] = {}

        def merge_environment_settings(
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            if proxies or verify is not None or cert is not None or not self.trust_env:
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            parts = urlsplit(url)
            key = (
                parts.scheme,
                parts.netloc.rpartition("@")[2].lower(),
                stream,
                tuple(self.proxies.items()),
                self.verify,
                self.cert,
            )
            settings: Any = self._environment.get(key)
            if settings is None:
                settings = super().merge_environment_settings(url, {}, stream, None, None)
                self._environment[key] = settings
            return {**settings, "proxies": dict(settings["proxies"])}

    _SESSION_CLASS = EnvironmentOnceSession
    return EnvironmentOnceSession


def _tracking_adapter_class() -> type:
    """``HTTPAdapter`` whose connections report their sockets to the transport (built once)."""
    global _ADAPTER_CLASS
    if _ADAPTER_CLASS is not None:
        return _ADAPTER_CLASS
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class TrackingAdapter(HTTPAdapter):
        def __init__(self, transport: Transport, **kwargs: Any) -> None:
            self._transport_ref = weakref.ref(transport)
            super().__init__(max_retries=0, **kwargs)

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            ref = self._transport_ref

            def tracked(base: type) -> type:
                class Tracked(base):  # type: ignore[misc, valid-type]
                    """A urllib3 connection that reports its socket to the transport."""

                    def connect(self) -> None:
                        super().connect()
                        transport = ref()
                        if transport is not None and self.sock is not None:
                            transport.track(self.sock)

                Tracked.__name__ = Tracked.__qualname__ = base.__name__
                return Tracked

            http_conn, https_conn = tracked(HTTPConnection), tracked(HTTPSConnection)
            self.poolmanager.pool_classes_by_scheme = {
                "http": type("TrackedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
                "https": type("TrackedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
            }

    _ADAPTER_CLASS = TrackingAdapter
    return TrackingAdapter
