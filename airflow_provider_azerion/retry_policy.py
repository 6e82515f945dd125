"""``AzerionRetryPolicy``: task-level retry decisions for Azerion errors (Airflow 3.3+ ``retry_policy``).

The hook already retries transient HTTP failures within one try. This policy decides what happens
to the *task* once the hook gives up: errors no retry can fix fail at once, rate-limit errors retry
after the server's advised wait, everything else follows the task's own ``retries`` and
``retry_delay``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

try:
    from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy
except ImportError as err:  # pragma: no cover - exercised on Airflow < 3.3 only
    from airflow_provider_azerion.compat import airflow_version

    raise ImportError(
        "AzerionRetryPolicy needs Airflow 3.3 or newer (the retry_policy task argument); "
        f"this environment has Airflow {airflow_version()}. Use the task's retries and "
        "retry_exponential_backoff instead: Azerion errors that cannot succeed on retry already "
        "fail the task at once."
    ) from err

from airflow_provider_azerion.exceptions import AzerionError, AzerionRateLimitError

if TYPE_CHECKING:
    from airflow.sdk import Context


def find_azerion_error(exception: BaseException | None) -> AzerionError | None:
    """The first ``AzerionError`` in an exception and its causes, if any."""
    seen: set[int] = set()
    while exception is not None and id(exception) not in seen:
        if isinstance(exception, AzerionError):
            return exception
        seen.add(id(exception))
        exception = exception.__cause__ or exception.__context__
    return None


class AzerionRetryPolicy(RetryPolicy):
    """Retry policy for tasks that call the Azerion API.

    - authentication, bad-request, validation and configuration errors: fail now;
    - rate-limit errors, and any retryable error whose response carried ``Retry-After``: retry
      after the server's advised wait (or ``rate_limit_delay``), capped by
      ``max_rate_limit_delay``. The hook ends a call at once when the server asks for longer than
      its ``max_retry_wait``, so long waits happen here, between tries, not inside one;
    - anything else: the task's standard ``retries`` / ``retry_delay`` behaviour.

    Like every retry policy it cannot grant more tries than the task's ``retries``.

    :param rate_limit_delay: wait used for a rate-limit error that carried no ``Retry-After``.
    :param max_rate_limit_delay: longest wait the server may impose through ``Retry-After``.
    """

    def __init__(
        self,
        rate_limit_delay: timedelta = timedelta(seconds=60),
        max_rate_limit_delay: timedelta = timedelta(minutes=30),
    ) -> None:
        self.rate_limit_delay = rate_limit_delay
        self.max_rate_limit_delay = max_rate_limit_delay

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        """Decide the task's fate from the Azerion error in ``exception``, if any."""
        error = find_azerion_error(exception)
        if error is None:
            return RetryDecision.default()
        if not error.retryable:
            return RetryDecision.fail(reason=f"{type(error).__name__} cannot succeed on retry")
        advised = getattr(error, "retry_after", None)
        if isinstance(error, AzerionRateLimitError) or advised is not None:
            # A rate limit, or a server that said how long to wait (Retry-After on a 503...).
            wait = timedelta(seconds=advised) if advised is not None else self.rate_limit_delay
            wait = min(wait, self.max_rate_limit_delay)
            what = "rate limit" if isinstance(error, AzerionRateLimitError) else "server asked to wait"
            return RetryDecision.retry(
                delay=wait, reason=f"Azerion {what}; retrying in {wait.total_seconds():g} s"
            )
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        """JSON form for DAG serialization (Airflow stores only that a policy exists)."""
        return {
            "__type": type(self).__name__,
            "rate_limit_delay": self.rate_limit_delay.total_seconds(),
            "max_rate_limit_delay": self.max_rate_limit_delay.total_seconds(),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> AzerionRetryPolicy:
        """Inverse of :meth:`serialize`."""
        return cls(
            rate_limit_delay=timedelta(seconds=data.get("rate_limit_delay", 60)),
            max_rate_limit_delay=timedelta(seconds=data.get("max_rate_limit_delay", 1800)),
        )
