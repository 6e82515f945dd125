"""The one call loop: every request of every hook call goes through :meth:`CallLoop.call`.

One budget of ``max_attempts`` requests per call, counting failed statuses, lost connections and
bodies that broke off alike; waits as :class:`~.retry.RetryRules` say (the server's
``Retry-After`` first); and :meth:`CallLoop.cancel`, which stops every call at once: waits end,
sockets in use are shut down, and the calls raise
:class:`~airflow_provider_azerion.exceptions.AzerionCancelledError`. No ``requests`` exception
leaves it: every failure becomes an ``AzerionError`` built by the call's
:class:`~.errors.CallErrors`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_azerion.hooks.bodies import BodyBroken
from airflow_provider_azerion.hooks.errors import CallErrors, Failure, classify, is_retryable_status
from airflow_provider_azerion.hooks.retry import Attempts, RetryRules, parse_retry_after
from airflow_provider_azerion.redact import strip_query

if TYPE_CHECKING:
    import requests

    from airflow_provider_azerion.hooks.session import SocketTracker

T = TypeVar("T")

_default_log = logging.getLogger(__name__)


class CallLoop:
    """Sends the hook's calls over one session, retrying within one budget each. Thread-safe.

    :param session: the session (see :func:`.session.build_session`).
    :param sockets: the session's sockets, shut down by :meth:`cancel`.
    :param rules: retry rules of every call.
    :param timeout: ``(connect, read)`` timeouts in seconds.
    :param key: the API key, masked in any text taken from an exception.
    :param logger: where retries are logged (the hook's task logger).
    :param metrics: counts 429 answers (``rate_limited()``) and resent requests (``retried()``),
        e.g. a :class:`~airflow_provider_azerion.metrics.TaskMetrics`; ``None`` counts nothing.
    """

    def __init__(
        self,
        session: requests.Session,
        sockets: SocketTracker,
        rules: RetryRules,
        timeout: tuple[float, float],
        key: str,
        logger: Any = None,
        metrics: Any = None,
    ) -> None:
        self.session = session
        self.sockets = sockets
        self.rules = rules
        self.timeout = timeout
        self.key = key
        self.log = logger or _default_log
        self.metrics = metrics
        self._cancelled = threading.Event()

    def __repr__(self) -> str:
        return f"CallLoop(rules={self.rules!r})"

    def call(
        self,
        method: str,
        url: str,
        read: Callable[[requests.Response], T],
        errors: CallErrors,
        *,
        rules: RetryRules | None = None,
        **kwargs: Any,
    ) -> T:
        """Send one call, retrying within one budget; return what ``read`` makes of the response.

        :param method: HTTP method.
        :param url: absolute URL.
        :param read: reads a successful response's body; raises :class:`~.bodies.BodyBroken` when
            the body breaks off (retried like a lost response) or an ``AzerionError`` (final).
        :param errors: builds the final exceptions.
        :param rules: rules of this call only (e.g. a single attempt); the loop's by default.
        :param kwargs: passed to ``requests.Session.request`` (``json``, ``headers``...).
        """
        import requests

        attempts = (rules or self.rules).attempts()
        kwargs.setdefault("timeout", self.timeout)
        while True:
            self._raise_if_cancelled(errors, method, sent=attempts.used > 0)
            if attempts.start() > 1 and self.metrics is not None:
                self.metrics.retried()
            failure: Failure | None = None
            try:
                response = self.session.request(method, url, stream=True, **kwargs)
            except (requests.RequestException, OSError, ValueError) as err:
                failure = classify(err, self.timeout, self.key)
            else:
                status = response.status_code
                if status == 429 and self.metrics is not None:
                    self.metrics.rate_limited()
                if status >= 400:
                    advised = parse_retry_after(response.headers)
                    wait = attempts.wait_before_retry(advised) if is_retryable_status(status) else None
                    if wait is None or self.cancelled:
                        raise errors.for_status(response, attempts)
                    response.close()
                    self._sleep(wait, attempts, f"HTTP {status}", method, url, advised, errors)
                    continue
                try:
                    with response:
                        return read(response)
                except BodyBroken as err:
                    failure = Failure(err.description, request_sent=True)
            self._raise_if_cancelled(errors, method, sent=True)
            if not failure.retryable or not attempts.rules.may_resend(method, failure.request_sent):
                raise errors.for_failure(failure, method, attempts)
            wait = attempts.wait_before_retry(None)
            if wait is None:
                raise errors.for_failure(failure, method, attempts)
            self._sleep(wait, attempts, failure.description, method, url, None, errors)

    def cancel(self) -> None:
        """Stop every call now: no more requests or waits, and sockets in use are shut down."""
        self._cancelled.set()
        self.sockets.shutdown_all()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def _sleep(
        self,
        wait: float,
        attempts: Attempts,
        what: str,
        method: str,
        url: str,
        advised: float | None,
        errors: CallErrors,
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

    def _raise_if_cancelled(self, errors: CallErrors, method: str, sent: bool) -> None:
        if self._cancelled.is_set():
            raise errors.cancelled(method, sent)
