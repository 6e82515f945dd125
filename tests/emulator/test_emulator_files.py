"""Result links: a second origin serving signed links that expire, with object storage's XML errors."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from tests.emulator.conftest import TIMEOUT, Api, open_image, storage_error

LINK = re.compile(
    r"^http://127\.0\.0\.1:(?P<port>\d+)/ark-content-generation/"
    r"(?P<name>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(?P<ext>jpeg|png|webp)"
    r"\?X-Tos-Algorithm=TOS4-HMAC-SHA256"
    r"&X-Tos-Credential=[^&]+"
    r"&X-Tos-Date=(?P<date>\d{8}T\d{6}Z)"
    r"&X-Tos-Expires=(?P<expires>\d+)"
    r"&X-Tos-SignedHeaders=host"
    r"&X-Tos-Signature=(?P<signature>[0-9a-f]{64})$"
)


def with_query(url: str, **changes: str | None) -> str:
    """The link with query parameters changed (a value of ``None`` removes the parameter)."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return urlunsplit(parts._replace(query=urlencode(params)))


def test_links_are_signed_object_storage_urls_on_the_files_origin(api: Api):
    link = api.result_link(output_format="png")

    match = LINK.match(link)
    assert match, link
    assert link.startswith(api.server.files_url + "/")
    assert int(match["port"]) == api.server.files_port != api.server.port
    assert match["ext"] == "png"
    assert match["expires"] == "86400"


def test_valid_link_serves_the_image_with_its_type_and_length(api: Api):
    link = api.result_link(output_format="png")

    download = requests.get(link, timeout=TIMEOUT)  # No Authorization header.

    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert int(download.headers["content-length"]) == len(download.content)
    assert open_image(download.content).size == (64, 64)


def test_head_of_a_valid_link_gives_type_and_length_without_a_body(api: Api):
    link = api.result_link()

    head = requests.head(link, timeout=TIMEOUT)

    assert head.status_code == 200
    assert head.headers["content-type"] == "image/jpeg"
    assert int(head.headers["content-length"]) == len(requests.get(link, timeout=TIMEOUT).content)
    assert head.content == b""


def test_url_expiry_knob_sets_x_tos_expires(api: Api):
    api.server.url_expiry = 600

    assert LINK.match(api.result_link())["expires"] == "600"


def test_link_expires_after_url_expiry(api: Api):
    api.server.url_expiry = 60
    link = api.result_link()
    api.server.clock_offset = 30
    assert requests.get(link, timeout=TIMEOUT).status_code == 200

    api.server.clock_offset = 61

    error = storage_error(requests.get(link, timeout=TIMEOUT), 403)
    assert error["Code"] == "AccessDenied"
    assert "expired" in error["Message"]


def test_link_with_zero_expiry_is_expired_at_once(api: Api):
    api.server.url_expiry = 0

    response = requests.get(api.result_link(), timeout=TIMEOUT)

    assert storage_error(response, 403)["Code"] == "AccessDenied"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"X-Tos-Signature": "0" * 64}, id="signature replaced"),
        pytest.param({"X-Tos-Signature": None}, id="signature removed"),
        pytest.param({"X-Tos-Expires": "999999"}, id="expiry raised"),
        pytest.param({"X-Tos-Date": "20991231T000000Z"}, id="date moved"),
        pytest.param({"X-Tos-Credential": None}, id="credential removed"),
        pytest.param({"response-content-type": "text/html"}, id="parameter added"),
    ],
)
def test_tampered_link_is_403_access_denied(api: Api, tamper):
    link = api.result_link()

    response = requests.get(with_query(link, **tamper), timeout=TIMEOUT)

    error = storage_error(response, 403)
    assert error["Code"] == "AccessDenied"
    assert "signature" in error["Message"]


def test_link_without_query_is_403_access_denied(api: Api):
    link = api.result_link()

    response = requests.get(link.partition("?")[0], timeout=TIMEOUT)

    assert storage_error(response, 403)["Code"] == "AccessDenied"


def test_signature_of_one_object_does_not_open_another(api: Api):
    first, second = api.result_link(prompt="one"), api.result_link(prompt="two")
    swapped = second.partition("?")[0] + "?" + first.partition("?")[2]

    assert storage_error(requests.get(swapped, timeout=TIMEOUT), 403)["Code"] == "AccessDenied"


def test_reordered_query_parameters_still_verify(api: Api):
    link = api.result_link()
    base, _, query = link.partition("?")
    reordered = base + "?" + "&".join(reversed(query.split("&")))

    assert requests.get(reordered, timeout=TIMEOUT).status_code == 200


def test_unknown_object_with_a_valid_signature_is_404_no_such_key(api: Api):
    link = api.result_link()
    api.server.reset()  # Forgets the stored files, not the signing key.

    error = storage_error(requests.get(link, timeout=TIMEOUT), 404)

    assert error["Code"] == "NoSuchKey"


def test_errors_never_echo_the_query_string(api: Api):
    link = api.result_link()
    signature = LINK.match(link)["signature"]
    api.server.clock_offset = 86400

    response = requests.get(link, timeout=TIMEOUT)

    assert response.status_code == 403
    assert signature not in response.text
    assert "X-Tos" not in response.text


def test_files_origin_rejects_other_methods_in_xml(api: Api):
    response = requests.post(api.result_link(), timeout=TIMEOUT)

    assert storage_error(response, 405)["Code"] == "MethodNotAllowed"


def test_api_origin_does_not_serve_result_files(api: Api):
    link = api.result_link()
    on_api_origin = link.replace(api.server.files_url, api.server.url)

    response = api.session.get(on_api_origin, timeout=TIMEOUT)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


def test_downloads_are_logged_by_path_without_query_or_credentials(api: Api):
    link = api.result_link()
    requests.get(link, timeout=TIMEOUT)
    requests.get(link, headers={"Authorization": "Bearer leaked-key"}, timeout=TIMEOUT)

    generation, plain, with_auth = api.server.requests
    name = LINK.match(link)["name"]
    assert (generation.origin, generation.authorization) == ("api", True)
    assert (plain.origin, plain.method, plain.path, plain.status) == (
        "files",
        "GET",
        f"/ark-content-generation/{name}.jpeg",
        200,
    )
    assert plain.authorization is False
    assert with_auth.authorization is True
    assert with_auth.status == 200  # The files origin neither needs nor checks the header.
    assert "leaked-key" not in repr(api.server.requests)
    assert [r.path for r in api.server.requests_to(link)] == [plain.path, with_auth.path]


def test_files_origin_sets_its_own_request_id_header(api: Api):
    download = requests.get(api.result_link(), timeout=TIMEOUT)

    assert re.fullmatch(r"[0-9a-f]{24}", download.headers["x-tos-request-id"])
    assert api.server.requests[-1].request_id == download.headers["x-tos-request-id"]
