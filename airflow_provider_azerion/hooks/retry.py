"""The hook's retry rules, in one place: which failures are retried, how long to wait, and the log line.

Built on urllib3's ``Retry`` (mounted on the hook's ``requests`` adapter) rather than a loop of our own.
Two rules differ from urllib3's defaults:

- A request that may have reached the server (read timeout, connection dropped after sending) is
  retried only for idempotent methods, or for POST when the user opted in with
  ``retry_on_timeout``: a lost generation response may already have been billed.
- The wait honours ``retry-after-ms`` and ``Retry-After`` (seconds or HTTP date) on every retryable
  status, capped by ``max_retry_wait``; without them it is exponential backoff with jitter,
  starting from the first retry (urllib3 would retry the first time immediately).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from typing import Any

from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_default_log = logging.getLogger(__name__)


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Read the server's advised wait, in seconds, from ``retry-after-ms`` or ``Retry-After``.

    :param headers: a case-insensitive mapping of response headers.
    :param now: the current unix time, for HTTP-date values (defaults to ``time.time()``).
    :return: seconds to wait (never negative), or ``None`` when no usable header is present.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return max(email.utils.mktime_tz(parsed) - (time.time() if now is None else now), 0.0)


class AzerionRetry(Retry):
    """urllib3 ``Retry`` with Azerion's billing-aware rules, capped waits and an INFO line per retry.

    :param retry_on_timeout: also retry POSTs whose response was lost after sending.
    :param max_retry_wait: upper bound, in seconds, of any single wait (Retry-After included).
    :param logger: where to log each retry (the hook passes its own task logger).
    """

    def __init__(
        self,
        *args: Any,
        retry_on_timeout: bool = False,
        max_retry_wait: float = 60.0,
        logger: logging.Logger | None = None,
        **kwargs: Any,
    ) -> None:
        self.retry_on_timeout = retry_on_timeout
        self.max_retry_wait = max_retry_wait
        self.logger = logger or _default_log
        super().__init__(*args, **kwargs)

    @classmethod
    def build(
        cls,
        *,
        max_attempts: int,
        backoff_factor: float,
        max_retry_wait: float,
        retry_on_timeout: bool,
        logger: logging.Logger | None = None,
    ) -> AzerionRetry:
        """The retry object the hook mounts: ``max_attempts`` requests in all, at most."""
        retries = max(max_attempts - 1, 0)
        return cls(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=5,
            allowed_methods=None,  # method rules live in increment(), per kind of failure
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_max=max_retry_wait,
            raise_on_status=False,  # hand the last response back so its error body can be reported
            respect_retry_after_header=True,
            retry_on_timeout=retry_on_timeout,
            max_retry_wait=max_retry_wait,
            logger=logger,
        )

    def new(self, **kw: Any) -> AzerionRetry:
        kw.setdefault("retry_on_timeout", self.retry_on_timeout)
        kw.setdefault("max_retry_wait", self.max_retry_wait)
        kw.setdefault("logger", self.logger)
        return super().new(**kw)  # type: ignore[return-value]

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> AzerionRetry:
        if error is not None and not self._request_never_sent(error) and not self._may_resend(method):
            # The request may have been processed (and billed): give the error back unretried.
            raise error.with_traceback(_stacktrace) if _stacktrace else error
        return super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[return-value]

    def _may_resend(self, method: str | None) -> bool:
        return (method or "").upper() in IDEMPOTENT_METHODS or self.retry_on_timeout

    @staticmethod
    def _request_never_sent(error: Exception) -> bool:
        # NewConnectionError and connect timeouts happen before a byte of the request left.
        if isinstance(error, (ConnectTimeoutError, NewConnectionError)):
            return True
        return not isinstance(error, (ReadTimeoutError, ProtocolError))

    def get_retry_after(self, response: Any) -> float | None:
        return parse_retry_after(response.headers)

    def get_backoff_time(self) -> float:
        attempt = len(self.history)
        if attempt == 0:
            return 0.0
        ceiling = min(self.max_retry_wait, self.backoff_factor * (2 ** (attempt - 1)))
        # "Equal jitter": at least half the exponential delay, so waits still grow, spread so
        # that many workers retrying together do not hit the API in lockstep.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def sleep(self, response: Any = None) -> None:
        advised = self.get_retry_after(response) if response is not None else None
        wait = min(advised, self.max_retry_wait) if advised is not None else self.get_backoff_time()
        last = self.history[-1] if self.history else None
        if last is not None:
            what = f"HTTP {last.status}" if last.status else type(last.error).__name__
            self.logger.info(
                "Azerion API %s %s failed with %s; retry %d in %.2f s%s",
                last.method,
                _path_of(last.url),
                what,
                len(self.history),
                wait,
                " (server's Retry-After)" if advised is not None else "",
            )
        if wait > 0:
            time.sleep(wait)


def _path_of(url: str | None) -> str:
    # Only the path: query strings of signed download URLs carry credentials.
    return (url or "").split("?", 1)[0]
