"""Each fault kind does what it says, scripts run in order, and seeded rates repeat exactly."""

from __future__ import annotations

import base64
import binascii
import json
import time

import pytest
import requests
from PIL import UnidentifiedImageError

from airflow_provider_azerion.emulator import FaultPlan
from tests.emulator.conftest import TIMEOUT, Api, decode_image, open_image, storage_error

STATUS_FAULTS = [
    ("400", 400, "invalid_request", "invalid_request_error"),
    ("401", 401, "invalid_api_key", "authentication_error"),
    ("403", 403, "insufficient_permissions", "permission_error"),
    ("404", 404, "not_found", "invalid_request_error"),
    ("422", 422, "unprocessable_entity", "invalid_request_error"),
    ("429", 429, "rate_limit_exceeded", "rate_limit_error"),
    ("500", 500, "internal_server_error", "server_error"),
    ("502", 502, "bad_gateway", "server_error"),
    ("503", 503, "service_unavailable", "server_error"),
    ("504", 504, "gateway_timeout", "server_error"),
]


@pytest.mark.parametrize(("kind", "status", "code", "error_type"), STATUS_FAULTS)
def test_status_fault_answers_json_error_in_azerion_shape(api: Api, kind, status, code, error_type):
    api.server.faults.script([kind])

    response = api.generate(size="64x64")

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param", "status_code"}
    assert (error["status_code"], error["code"], error["type"]) == (status, code, error_type)


@pytest.mark.parametrize(("kind", "status", "code", "error_type"), STATUS_FAULTS)
def test_status_fault_on_the_model_list(api: Api, kind, status, code, error_type):
    api.server.faults.script([kind], endpoint="models")

    response = api.get("/models")

    assert response.status_code == status
    assert (response.json()["error"]["code"], response.json()["error"]["type"]) == (code, error_type)


def test_429_fault_carries_both_retry_headers(api: Api):
    api.server.retry_after = 1.5
    api.server.faults.script(["429"])

    response = api.generate(size="64x64")

    assert response.headers["Retry-After"] == "2"
    assert response.headers["retry-after-ms"] == "1500"


def test_html502_answers_a_proxy_page(api: Api):
    api.server.faults.script(["html502"])

    response = api.generate(size="64x64")

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_drop_closes_the_connection_without_any_response(api: Api):
    api.server.faults.script(["drop"])

    with pytest.raises(requests.exceptions.ConnectionError):
        api.generate(size="64x64")

    (record,) = api.server.requests
    assert (record.status, record.fault) == (0, "drop")


def test_slow_fault_delays_then_answers_normally(api: Api):
    api.server.faults.script(["slow:0.4"])

    started = time.monotonic()
    response = api.generate(size="64x64")

    assert time.monotonic() - started >= 0.4
    assert response.status_code == 200


def test_slow_fault_exceeds_a_client_read_timeout(api: Api):
    api.server.faults.script(["slow:1"])

    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post("/images/generations", json={"model": "stable-image-core-1.1", "prompt": "cat"}, timeout=0.3)


def test_truncated_json_is_a_200_with_half_a_body(api: Api):
    api.server.faults.script(["truncated_json"])

    response = api.generate(size="64x64")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text.startswith('{"created":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_invalid_base64_cannot_be_decoded(api: Api):
    api.server.faults.script(["invalid_base64"])

    b64 = api.generate(size="64x64").json()["data"][0]["b64_json"]

    with pytest.raises(binascii.Error):
        base64.b64decode(b64)
    with pytest.raises(binascii.Error):
        base64.b64decode(b64, validate=True)


def test_not_image_is_valid_base64_of_other_bytes(api: Api):
    api.server.faults.script(["not_image"])

    b64 = api.generate(size="64x64").json()["data"][0]["b64_json"]

    assert base64.b64decode(b64, validate=True) == b"hello world" * 10
    with pytest.raises(UnidentifiedImageError):
        decode_image(b64)


def test_empty_data_is_a_200_without_images(api: Api):
    api.server.faults.script(["empty_data"])

    body = api.generate(size="64x64").json()

    assert body["data"] == []
    assert "usage" in body


def test_script_is_consumed_in_order_then_requests_succeed(api: Api):
    api.server.faults.script(["503", "ok", "500"])

    statuses = [api.generate(size="16x16").status_code for _ in range(5)]

    assert statuses == [503, 200, 500, 200, 200]
    assert [r.fault for r in api.server.requests] == ["503", None, "500", None, None]
    assert api.server.faults.pending() == 0


def test_unauthenticated_requests_do_not_consume_the_script(api: Api):
    api.server.faults.script(["503"])
    requests.post(api.server.base_url + "/images/generations", json={}, timeout=TIMEOUT)

    assert api.generate(size="16x16").status_code == 503


def test_seeded_rate_gives_the_same_faults_on_every_run(api: Api):
    def run() -> list[str | None]:
        api.server.reset()
        api.server.faults.set_rate(0.5, kinds=["503", "429"], seed=7)
        for _ in range(12):
            api.generate(size="16x16")
        return [record.fault for record in api.server.requests]

    first, second = run(), run()

    assert first == second
    assert {"503", "429"} <= set(first)
    assert None in first


def test_script_takes_precedence_over_rate(api: Api):
    api.server.faults.set_rate(1.0, kinds=["500"])
    api.server.faults.script(["ok"])

    assert api.generate(size="16x16").status_code == 200
    assert api.generate(size="16x16").status_code == 500


def test_rate_of_zero_removes_the_rate(api: Api):
    api.server.faults.set_rate(1.0, kinds=["500"])
    api.server.faults.set_rate(0)

    assert api.generate(size="16x16").status_code == 200


def test_models_endpoint_faults_are_scripted_separately(api: Api):
    api.server.faults.script(["503", "empty_data"], endpoint="models")

    assert api.generate(size="16x16").status_code == 200
    assert api.get("/models").status_code == 503
    assert api.get("/models").json()["data"] == []
    assert len(api.get("/models").json()["data"]) >= 2


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("403", 403, "AccessDenied"),
        ("expired", 403, "AccessDenied"),
        ("404", 404, "NoSuchKey"),
        ("429", 429, "TooManyRequests"),
        ("500", 500, "InternalError"),
        ("502", 502, "BadGateway"),
        ("503", 503, "ServiceUnavailable"),
        ("504", 504, "GatewayTimeout"),
    ],
)
def test_files_status_faults_answer_object_storage_xml(api: Api, kind, status, code):
    url = api.result_link()
    api.server.faults.script([kind], endpoint="files")

    assert storage_error(requests.get(url, timeout=TIMEOUT), status)["Code"] == code
    assert requests.get(url, timeout=TIMEOUT).status_code == 200
    assert [r.fault for r in api.server.requests_to(url)] == [kind, None]


def test_files_expired_fault_reads_like_an_expired_link(api: Api):
    url = api.result_link()
    api.server.faults.script(["expired"], endpoint="files")

    assert "expired" in storage_error(requests.get(url, timeout=TIMEOUT), 403)["Message"]


def test_files_429_fault_carries_retry_after(api: Api):
    api.server.retry_after = 2
    url = api.result_link()
    api.server.faults.script(["429"], endpoint="files")

    assert requests.get(url, timeout=TIMEOUT).headers["Retry-After"] == "2"


def test_files_html502_answers_a_proxy_page(api: Api):
    url = api.result_link()
    api.server.faults.script(["html502"], endpoint="files")

    response = requests.get(url, timeout=TIMEOUT)

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")


def test_files_slow_fault_delays_the_download(api: Api):
    url = api.result_link()
    api.server.faults.script(["slow:1"], endpoint="files")

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, timeout=(TIMEOUT, 0.3))


def test_files_endpoint_drop(api: Api):
    url = api.generate(size="16x16", response_format="url").json()["data"][0]["url"]
    api.server.faults.script(["drop"], endpoint="files")

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=TIMEOUT)
    assert open_image(requests.get(url, timeout=TIMEOUT).content).size == (16, 16)


def test_files_endpoint_truncated_body_is_shorter_than_promised(api: Api):
    url = api.generate(size="256x256", output_format="png", response_format="url").json()["data"][0]["url"]
    api.server.faults.script(["truncated"], endpoint="files")

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=TIMEOUT)


def test_files_endpoint_not_image(api: Api):
    url = api.generate(size="16x16", response_format="url").json()["data"][0]["url"]
    api.server.faults.script(["not_image"], endpoint="files")

    download = requests.get(url, timeout=TIMEOUT)

    assert download.headers["content-type"] == "image/jpeg"
    assert download.content == b"hello world" * 10


@pytest.mark.parametrize(
    ("kind", "endpoint"),
    [
        ("teapot", "generations"),
        ("invalid_base64", "files"),
        ("truncated", "generations"),
        ("slow:x", "models"),
        ("expired", "generations"),
        ("400", "files"),
        ("422", "files"),
        ("not_image", "models"),
    ],
)
def test_unknown_fault_kinds_are_rejected_when_scripted(kind, endpoint):
    with pytest.raises(ValueError, match="Unknown fault"):
        FaultPlan().script([kind], endpoint=endpoint)


def test_unknown_fault_endpoint_is_rejected():
    with pytest.raises(ValueError, match="Unknown fault endpoint"):
        FaultPlan().script(["503"], endpoint="chat")
