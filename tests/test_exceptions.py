"""Errors keep type, fields and prompt context across a pickle: Airflow ships them between processes."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_azerion.exceptions import (
    AzerionAuthenticationError,
    AzerionBadRequestError,
    AzerionBaseURLError,
    AzerionCancelledError,
    AzerionConfigurationError,
    AzerionConnectionError,
    AzerionDownloadError,
    AzerionRateLimitError,
    AzerionResponseError,
    AzerionServerError,
    AzerionStorageError,
    AzerionValidationError,
)

ERRORS = [
    AzerionServerError(503, "overloaded", code="server_busy", request_id="req-1", retry_after=2.0),
    AzerionBadRequestError(400, "bad size", code="invalid_size", param="size"),
    AzerionAuthenticationError(401, "no key"),
    AzerionBaseURLError(405, "Method Not Allowed at http://127.0.0.1:9/v1/images/generations"),
    AzerionRateLimitError(429, "slow down", retry_after=1.5),
    AzerionConnectionError("connection reset", request_sent=True),
    AzerionCancelledError("stopped"),
    AzerionDownloadError("link expired", host="files.example", status_code=403),
    AzerionResponseError("no images"),
    AzerionValidationError("n must be 1-10"),
    AzerionConfigurationError("no key"),
    AzerionStorageError("read-only"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_the_prompt_context_survives_a_pickle(error):
    error.add_context("prompt 3 ('a red fox')")

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert str(copy).startswith("prompt 3 ('a red fox'): ")
    assert copy.context == "prompt 3 ('a red fox')"
    for field in ("status_code", "code", "param", "request_id", "retry_after", "request_sent", "host"):
        assert getattr(copy, field, None) == getattr(error, field, None)


def test_context_is_added_once_and_replaced_not_stacked():
    error = AzerionResponseError("no images")
    error.add_context("prompt 1 ('a')")
    error.add_context("prompt 2 ('b')")

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert str(copy) == "prompt 2 ('b'): no images"
