"""AzerionRetryPolicy decides the task's fate from the Azerion error it failed with."""

from __future__ import annotations

import importlib.util
from datetime import timedelta

import pytest

from airflow_provider_azerion.exceptions import (
    AzerionAuthenticationError,
    AzerionBadRequestError,
    AzerionConfigurationError,
    AzerionConnectionError,
    AzerionRateLimitError,
    AzerionServerError,
    AzerionValidationError,
)

HAS_RETRY_POLICY = importlib.util.find_spec("airflow.sdk.definitions.retry_policy") is not None


@pytest.mark.skipif(HAS_RETRY_POLICY, reason="this Airflow has RetryPolicy")
def test_import_on_older_airflow_says_which_version_is_needed():
    with pytest.raises(ImportError, match=r"needs Airflow 3\.3 or newer.*has Airflow 3\."):
        import airflow_provider_azerion.retry_policy  # noqa: F401


needs_retry_policy = pytest.mark.skipif(not HAS_RETRY_POLICY, reason="needs Airflow 3.3+")


def _action():
    from airflow.sdk.definitions.retry_policy import RetryAction

    return RetryAction


def _decide(error, **policy_kwargs):
    from airflow_provider_azerion.retry_policy import AzerionRetryPolicy

    return AzerionRetryPolicy(**policy_kwargs).evaluate(error, try_number=1, max_tries=3)


@needs_retry_policy
@pytest.mark.parametrize(
    "error",
    [
        AzerionAuthenticationError(401, "bad key"),
        AzerionBadRequestError(404, "no such model"),
        AzerionValidationError("prompt is empty"),
        AzerionConfigurationError("no key"),
    ],
)
def test_errors_no_retry_can_fix_fail_at_once(error):
    assert _decide(error).action == _action().FAIL


@needs_retry_policy
def test_rate_limit_retries_after_the_servers_retry_after():
    decision = _decide(AzerionRateLimitError(429, "slow down", retry_after=12))
    assert decision.action == _action().RETRY
    assert decision.retry_delay == timedelta(seconds=12)


@needs_retry_policy
def test_rate_limit_without_retry_after_uses_the_policy_delay_and_cap():
    assert _decide(
        AzerionRateLimitError(429, "x"), rate_limit_delay=timedelta(seconds=7)
    ).retry_delay == timedelta(seconds=7)
    capped = _decide(
        AzerionRateLimitError(429, "x", retry_after=99999), max_rate_limit_delay=timedelta(minutes=5)
    )
    assert capped.retry_delay == timedelta(minutes=5)


@needs_retry_policy
@pytest.mark.parametrize(
    "error",
    [AzerionServerError(503, "busy"), AzerionConnectionError("dropped", request_sent=True), ValueError("x")],
)
def test_transient_and_foreign_errors_follow_the_tasks_own_retries(error):
    assert _decide(error).action == _action().DEFAULT


@needs_retry_policy
def test_a_server_error_that_said_how_long_to_wait_retries_after_that_wait():
    decision = _decide(AzerionServerError(503, "maintenance", retry_after=120))
    assert decision.action == _action().RETRY
    assert decision.retry_delay == timedelta(seconds=120)


@needs_retry_policy
def test_an_azerion_error_wrapped_by_another_exception_is_found():
    outer = RuntimeError("prompt 2 failed")
    outer.__cause__ = AzerionRateLimitError(429, "x", retry_after=3)
    assert _decide(outer).retry_delay == timedelta(seconds=3)


@needs_retry_policy
def test_policy_serializes_round_trip():
    from airflow_provider_azerion.retry_policy import AzerionRetryPolicy

    policy = AzerionRetryPolicy(rate_limit_delay=timedelta(seconds=5))
    again = AzerionRetryPolicy.deserialize(policy.serialize())
    assert again.rate_limit_delay == timedelta(seconds=5)
