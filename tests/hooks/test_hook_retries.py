"""AzerionHook's retry rules and error mapping, against the emulator's fault script over real HTTP."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_azerion.exceptions import (
    AzerionAuthenticationError,
    AzerionConnectionError,
    AzerionDownloadError,
    AzerionRateLimitError,
    AzerionResponseError,
    AzerionServerError,
)
from airflow_provider_azerion.hooks.retry import parse_retry_after
from tests.hooks.conftest import SECRET_KEY

MODEL = "stable-image-core-1.1"


def _generate(hook, prompt="a cat"):
    return hook.generate_images(prompt, model=MODEL, size="32x32")


def test_429_with_retry_after_is_retried_after_the_advised_wait(emulator, make_hook):
    emulator.retry_after = 0.6
    emulator.faults.script(["429"])
    started = time.monotonic()
    result = _generate(make_hook())
    assert len(result.images) == 1
    assert time.monotonic() - started >= 0.55
    assert emulator.generation_count == 2


def test_503_twice_then_success(emulator, make_hook):
    emulator.faults.script(["503", "503"])
    assert len(_generate(make_hook()).images) == 1
    assert emulator.generation_count == 3


@pytest.mark.parametrize("status", ["500", "502", "504"])
def test_other_retryable_statuses_are_retried(emulator, make_hook, status):
    emulator.faults.script([status])
    assert len(_generate(make_hook()).images) == 1
    assert emulator.generation_count == 2


def test_503_on_every_attempt_raises_server_error_after_max_attempts(emulator, make_hook):
    emulator.faults.script(["503"] * 10)
    with pytest.raises(AzerionServerError) as err:
        _generate(make_hook(max_attempts=3))
    assert err.value.status_code == 503
    assert emulator.generation_count == 3
    assert not isinstance(err.value, AirflowFailException)  # task retries stay available


def test_rate_limit_exhausted_carries_retry_after(emulator, make_hook):
    emulator.retry_after = 0.05
    emulator.faults.script(["429"] * 5)
    with pytest.raises(AzerionRateLimitError) as err:
        _generate(make_hook(max_attempts=2))
    assert err.value.retry_after == pytest.approx(0.05)
    assert "lower max_active_requests" in str(err.value).lower()
    assert emulator.generation_count == 2


def test_retry_after_longer_than_max_retry_wait_stops_at_once_with_the_advised_wait(emulator, make_hook):
    emulator.retry_after = 30
    emulator.faults.script(["429"])
    started = time.monotonic()
    with pytest.raises(AzerionRateLimitError) as err:
        _generate(make_hook(max_retry_wait=0.2))
    assert time.monotonic() - started < 5  # neither 30 s nor a capped wait followed by another 429
    assert err.value.retry_after == pytest.approx(30)
    assert emulator.generation_count == 1


def test_401_is_sent_once_and_fails_fast(emulator, make_hook):
    emulator.api_key = "another-key"
    with pytest.raises(AzerionAuthenticationError) as err:
        _generate(make_hook())
    assert isinstance(err.value, AirflowFailException)
    assert emulator.generation_count == 1
    assert "Check the API key" in str(err.value)


def test_html_error_page_gives_a_readable_message(emulator, make_hook):
    emulator.faults.script(["html502"] * 5)
    with pytest.raises(AzerionServerError) as err:
        _generate(make_hook(max_attempts=1))
    text = str(err.value)
    assert text.startswith("Azerion API 502")
    assert "non-JSON body" in text
    assert "<html" not in text.lower()


def test_dropped_connection_after_sending_a_generation_is_not_resent(emulator, make_hook):
    emulator.faults.script(["drop"])
    with pytest.raises(AzerionConnectionError) as err:
        _generate(make_hook())
    assert err.value.request_sent is True
    assert "billed" in str(err.value)
    assert emulator.generation_count == 1


def test_dropped_connection_on_a_get_is_retried(emulator, make_hook):
    emulator.faults.script(["drop"], endpoint="models")
    assert make_hook().list_models()
    assert len(emulator.requests_to("/models")) == 2


def test_post_read_timeout_is_not_retried_by_default(emulator, make_hook):
    emulator.faults.script(["slow:2"])
    with pytest.raises(AzerionConnectionError) as err:
        _generate(make_hook(read_timeout=0.5))
    assert "no response within 0.5 s" in str(err.value)
    assert "retry_on_timeout=True" in str(err.value)
    assert emulator.generation_count == 1


def test_post_read_timeout_is_retried_when_opted_in(emulator, make_hook):
    emulator.faults.script(["slow:2", "ok"])
    result = _generate(make_hook(read_timeout=0.5, retry_on_timeout=True))
    assert len(result.images) == 1
    assert emulator.generation_count == 2


def test_truncated_json_is_a_response_error(emulator, make_hook):
    emulator.faults.script(["truncated_json"])
    with pytest.raises(AzerionResponseError, match="not valid JSON"):
        _generate(make_hook())


def test_empty_data_is_a_response_error(emulator, make_hook):
    emulator.faults.script(["empty_data"])
    with pytest.raises(AzerionResponseError, match="no images"):
        _generate(make_hook())


class _Counted:
    """Stands in for TaskMetrics: records what the hook reports, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def rate_limited(self) -> None:
        self.events.append("rate_limited")

    def retried(self) -> None:
        self.events.append("retried")


def test_metrics_count_each_429_and_each_request_sent_again(emulator, make_hook):
    emulator.retry_after = 0.01
    emulator.faults.script(["429", "503"])
    metrics = _Counted()
    _generate(make_hook(metrics=metrics))
    assert metrics.events == ["rate_limited", "retried", "retried"]
    assert emulator.generation_count == 3


def test_metrics_set_after_first_use_count_a_final_429_too(emulator, make_hook):
    emulator.retry_after = 0.01
    hook = make_hook(max_attempts=2)
    hook.list_models()  # the session and its call loop exist already
    hook.metrics = metrics = _Counted()
    emulator.faults.script(["429", "429"])
    with pytest.raises(AzerionRateLimitError):
        _generate(hook)
    assert metrics.events == ["rate_limited", "retried", "rate_limited"]


def test_task_metrics_reach_airflow_stats(emulator, make_hook, monkeypatch):
    from airflow_provider_azerion import metrics as metrics_module

    sent: list[tuple[str, int]] = []

    class Stats:
        @staticmethod
        def incr(name, count=1, rate=1, tags=None):
            sent.append((name, count))

    monkeypatch.setattr(metrics_module, "_stats", lambda: Stats)
    emulator.retry_after = 0.01
    emulator.faults.script(["429"])
    _generate(make_hook(metrics=metrics_module.TaskMetrics("dag", "task", MODEL)))
    assert sent == [("azerion.rate_limited", 1), ("azerion.retries", 1)]


def test_each_retry_is_logged_at_info_with_status_and_wait(emulator, make_hook, log_output):
    emulator.faults.script(["503"])
    _generate(make_hook())
    lines = [line for line in log_output().splitlines() if "retry 1 of 4 in" in line]
    assert lines
    assert lines[0].startswith("info ")
    assert "/v1/images/generations failed with HTTP 503" in lines[0]


def test_the_key_never_reaches_logs_or_exception_texts(emulator, make_hook, log_output):
    texts = []
    hook = make_hook(max_attempts=2, read_timeout=0.5)
    for faults in (["503", "503"], ["429", "429"], ["html502", "html502"], ["drop"], ["slow:1"]):
        emulator.faults.script(faults)
        try:
            _generate(hook)
        except Exception as err:
            texts.append(f"{err!s} {err!r}")
    emulator.api_key = "another-key"
    try:
        _generate(hook)
    except Exception as err:
        texts.append(f"{err!s} {err!r}")
    texts.append(str(hook.test_connection()))
    assert len(texts) == 7
    logs = log_output()
    assert "retry 1 of 1 in" in logs  # the capture really saw the hook's log lines
    assert SECRET_KEY not in logs
    assert all(SECRET_KEY not in text for text in texts)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after_reads_ms_seconds_and_http_dates(headers, expected):
    now = 1445412480.0  # 2015-10-21 07:28:00 GMT
    assert parse_retry_after(headers, now=now) == expected


def _url_result(hook):
    return hook.generate_images("a boat", model="bytedance-seedream-4", size="512x512", response_format="url")


def _downloads(emulator, url):
    return emulator.requests_to(urlsplit(url).path)


def test_download_whose_body_breaks_off_is_fetched_again(emulator, make_hook):
    hook = make_hook()
    url = _url_result(hook).images[0].url
    emulator.faults.script(["truncated", "503"], endpoint="files")
    data = hook.download_image(url)
    assert data[:3] == b"\xff\xd8\xff"
    assert len(_downloads(emulator, url)) == 3


def test_download_that_keeps_breaking_off_fails_after_max_attempts(emulator, make_hook):
    hook = make_hook(max_attempts=2)
    url = _url_result(hook).images[0].url
    emulator.faults.script(["truncated"] * 5, endpoint="files")
    with pytest.raises(AzerionDownloadError) as err:
        hook.download_image(url)
    assert not isinstance(err.value, AirflowFailException)  # a task retry generates a new link
    assert len(_downloads(emulator, url)) == 2
