"""The hook's retry rules, in one place: what is resent, how long to wait, and when to stop.

One :class:`RetryRules` serves every call the hook makes (generations, model listings, result
downloads) and one :class:`Attempts` budget counts every request of a call, whatever failed: a
status, a dropped connection, or a body that broke off midway. So ``max_attempts`` is a hard bound
on the requests one call sends (the loop that uses it is in :mod:`.calls`).

The rules:

- **Statuses**: 408, 409, 429 and 5xx are retried, every other 4xx is final (the same request
  would fail the same way or, for 402 and 413, cost the same again). Which status is which is
  stated once, in :func:`~airflow_provider_azerion.exceptions.error_class_for_status`, and read
  through :func:`.errors.is_retryable_status`.
- **Lost responses**: a request that may have reached the server (read timeout, connection dropped
  after sending, body broken off) is resent only when it is safe: a GET bills nothing; a POST only
  with ``retry_on_timeout``, because a generation whose response was lost may have been billed.
  A connection that failed before anything was sent is always safe to retry.
- **Waits**: the server's ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date) when it sends
  one; otherwise exponential backoff with "equal jitter" from the first retry. A server asking for
  longer than ``max_retry_wait`` ends the call at once, carrying its advised wait, so that the
  task's retry policy (``AzerionRetryPolicy``) can wait as asked instead of drawing another 429.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_azerion.settings import DEFAULT_SETTINGS

#: Methods whose requests may be resent even when they may have reached the server.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


@dataclass(frozen=True)
class RetryRules:
    """How the hook retries, from the connection's settings; defaults from ``settings.DEFAULT_SETTINGS``.

    :param max_attempts: requests per call at most, first one included.
    :param backoff_factor: base, in seconds, of the exponential backoff.
    :param max_retry_wait: longest single wait; a server asking for more ends the call.
    :param retry_on_timeout: resend POSTs whose response was lost after sending.
    """

    max_attempts: int = DEFAULT_SETTINGS["max_attempts"]
    backoff_factor: float = DEFAULT_SETTINGS["backoff_factor"]
    max_retry_wait: float = DEFAULT_SETTINGS["max_retry_wait"]
    retry_on_timeout: bool = DEFAULT_SETTINGS["retry_on_timeout"]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RetryRules:
        """The rules of a hook's resolved settings (``AzerionHook.settings``)."""
        return cls(
            max_attempts=settings["max_attempts"],
            backoff_factor=settings["backoff_factor"],
            max_retry_wait=settings["max_retry_wait"],
            retry_on_timeout=settings["retry_on_timeout"],
        )

    def may_resend(self, method: str, request_sent: bool) -> bool:
        """Whether a request that failed without a usable response may be sent again.

        :param method: the HTTP method.
        :param request_sent: ``False`` only when the failure happened before any byte was sent.
        """
        if not request_sent:
            return True
        return method.upper() in IDEMPOTENT_METHODS or self.retry_on_timeout

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first) when the server advised none.

        "Equal jitter": at least half the exponential delay, so waits still grow, spread so that
        many workers retrying together do not hit the API in lockstep.
        """
        ceiling = min(self.max_retry_wait, self.backoff_factor * (2 ** (retry - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def attempts(self) -> Attempts:
        """A fresh budget for one call."""
        return Attempts(self)


class Attempts:
    """The request budget of one call: ``max_attempts`` requests in all, whatever fails.

    :param rules: the rules the budget follows.
    """

    def __init__(self, rules: RetryRules) -> None:
        self.rules = rules
        #: Requests sent (or tried) so far.
        self.used = 0

    def start(self) -> int:
        """Count one more request; return its number (1 for the first)."""
        self.used += 1
        return self.used

    @property
    def left(self) -> int:
        """Requests the budget still allows."""
        return max(self.rules.max_attempts - self.used, 0)

    def wait_before_retry(self, advised: float | None) -> float | None:
        """How long to wait before the next request, or ``None`` when the call must stop now.

        :param advised: the server's ``Retry-After`` in seconds, if it sent one.
        :return: ``None`` when the budget is spent or the server asks for longer than
            ``max_retry_wait``; otherwise the seconds to wait.
        """
        if self.left <= 0:
            return None
        if advised is not None:
            return advised if advised <= self.rules.max_retry_wait else None
        return self.rules.backoff(self.used)
