"""The emulator answers like Azerion's API: model list, generation responses, images and files."""

from __future__ import annotations

import base64

import pytest
import requests

from airflow_provider_azerion.emulator.state import FileStore
from tests.emulator.conftest import TIMEOUT, Api, decode_image, open_image

JPEG, PNG, WEBP = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF"


def test_models_are_listed_in_openai_shape(api: Api):
    response = api.get("/models")

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    models = {model["id"]: model for model in body["data"]}
    assert {"stable-image-core-1.1", "bytedance-seedream-4", "bytedance-seedream-4-5"} <= set(models)
    for model in models.values():
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model"
        assert isinstance(model["created"], int)
    assert models["stable-image-core-1.1"]["owned_by"] == "stability-ai"
    assert models["bytedance-seedream-4"]["owned_by"] == "bytedance"


def test_generation_response_has_azerion_shape(api: Api):
    response = api.generate(size="64x64")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"created", "data", "usage"}
    assert isinstance(body["created"], int)
    assert body["usage"] == {
        "input_tokens": 0,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
        "output_tokens": 0,
        "total_tokens": 0,
    }


def test_revised_prompt_is_absent_by_default(api: Api):
    sic = api.generate(size="64x64", n=2).json()["data"]
    seedream = api.generate(model="bytedance-seedream-4", size="512x512", response_format="b64_json").json()

    assert all("revised_prompt" not in item for item in [*sic, *seedream["data"]])


def test_revise_prompts_knob_adds_a_revised_prompt_to_every_image(api: Api):
    api.server.revise_prompts = True

    data = api.generate(size="64x64", n=2).json()["data"]

    assert [item["revised_prompt"] for item in data] == [
        "a red fox in the snow, rendered by the Azerion emulator"
    ] * 2


@pytest.mark.parametrize(
    ("size", "images", "tokens_per_image"),
    [("2K", 1, 16384), ("1024x1024", 1, 4096), ("512x512", 1, 1024)],
)
def test_seedream_usage_counts_images_and_pixel_tokens(api: Api, size, images, tokens_per_image):
    api.server.max_side = 32  # The usage is that of the requested size, not of the rendered one.

    body = api.generate(model="bytedance-seedream-4", size=size).json()

    assert body["usage"] == {
        "generated_images": images,
        "output_tokens": images * tokens_per_image,
        "total_tokens": images * tokens_per_image,
    }


def test_seedream_usage_of_a_sequential_generation_counts_every_image(api: Api):
    api.server.max_side = 16

    body = api.generate(
        model="bytedance-seedream-4",
        size="512x512",
        sequential_image_generation="auto",
        sequential_image_generation_options={"max_images": 3},
    ).json()

    assert len(body["data"]) == 3
    assert body["usage"] == {"generated_images": 3, "output_tokens": 3072, "total_tokens": 3072}


def test_stable_image_core_returns_a_1024_jpeg_as_base64_by_default(api: Api):
    item = api.generate().json()["data"][0]

    assert set(item) == {"b64_json"}
    assert item["b64_json"].startswith("/9j/")  # As in Azerion's own example.
    assert base64.b64decode(item["b64_json"]).startswith(JPEG)
    image = decode_image(item["b64_json"])
    assert (image.format, image.size) == ("JPEG", (1024, 1024))


def test_requested_size_is_rendered(api: Api):
    image = decode_image(api.generate(size="96x48").json()["data"][0]["b64_json"])

    assert image.size == (96, 48)


@pytest.mark.parametrize(
    ("output_format", "magic", "pil_format"),
    [("png", PNG, "PNG"), ("webp", WEBP, "WEBP"), ("jpeg", JPEG, "JPEG")],
)
def test_output_format_selects_the_encoding(api: Api, output_format, magic, pil_format):
    b64 = api.generate(size="64x64", output_format=output_format).json()["data"][0]["b64_json"]

    assert base64.b64decode(b64).startswith(magic)
    assert decode_image(b64).format == pil_format


@pytest.mark.parametrize(("aspect_ratio", "size"), [("16:9", (1344, 768)), ("9:21", (640, 1536))])
def test_aspect_ratio_sets_stable_image_core_size(api: Api, aspect_ratio, size):
    api.server.max_side = None
    b64 = api.generate(aspect_ratio=aspect_ratio, output_format="png").json()["data"][0]["b64_json"]

    assert decode_image(b64).size == size


def test_url_response_items_carry_only_the_link(api: Api):
    item = api.generate(size="64x64", response_format="url").json()["data"][0]

    assert set(item) == {"url"}
    assert item["url"].startswith(api.server.files_url + "/ark-content-generation/")


@pytest.mark.parametrize("model", ["bytedance-seedream-4", "bytedance-seedream-4-5"])
def test_seedream_defaults_to_a_2k_jpeg_url(api: Api, model):
    api.server.max_side = 128
    item = api.generate(model=model).json()["data"][0]

    assert set(item) == {"url"}
    image = open_image(requests.get(item["url"], timeout=TIMEOUT).content)
    assert (image.format, image.size) == ("JPEG", (128, 128))  # 2048x2048 scaled by max_side.


@pytest.mark.parametrize(("size", "side"), [("2K", 2048), ("1024x1024", 1024), ("512x512", 512)])
def test_seedream_renders_each_documented_size(api: Api, size, side):
    body = api.generate(model="bytedance-seedream-4", size=size, response_format="b64_json").json()

    assert decode_image(body["data"][0]["b64_json"]).size == (side, side)


def test_seedream_accepts_b64_json(api: Api):
    item = api.generate(model="bytedance-seedream-4", size="512x512", response_format="b64_json").json()

    assert decode_image(item["data"][0]["b64_json"]).size == (512, 512)


def test_seedream_watermark_marks_the_image_and_can_be_turned_off(api: Api):
    def image(**params: object) -> bytes:
        body = api.generate(
            model="bytedance-seedream-4", size="512x512", response_format="b64_json", seed=3, **params
        ).json()
        return base64.b64decode(body["data"][0]["b64_json"])

    default, marked, unmarked = image(), image(watermark=True), image(watermark=False)

    assert default == marked
    assert marked != unmarked


@pytest.mark.parametrize(
    "image",
    [
        "https://example.com/reference.png",
        ["https://example.com/a.png", "http://example.com/b.jpg"],
        "data:image/png;base64,iVBORw0KGgo=",
    ],
)
def test_seedream_accepts_reference_images_without_fetching_them(api: Api, image):
    api.server.max_side = 16

    response = api.generate(model="bytedance-seedream-4", image=image)

    assert response.status_code == 200
    assert len(response.json()["data"]) == 1
    assert [r.origin for r in api.server.requests] == ["api"]


def test_n_returns_that_many_different_images(api: Api):
    data = api.generate(size="64x64", n=3).json()["data"]

    assert len(data) == 3
    assert len({item["b64_json"] for item in data}) == 3


def test_seedream_sequential_generation_returns_max_images(api: Api):
    api.server.max_side = 16
    data = api.generate(
        model="bytedance-seedream-4",
        size="512x512",
        sequential_image_generation="auto",
        sequential_image_generation_options={"max_images": 4},
    ).json()["data"]

    assert len(data) == 4
    assert len({item["url"] for item in data}) == 4


def test_seedream_sequential_generation_without_max_images_returns_fifteen(api: Api):
    api.server.max_side = 16

    data = api.generate(model="bytedance-seedream-4", sequential_image_generation="auto").json()["data"]

    assert len(data) == 15


@pytest.mark.parametrize("mode", [None, "disabled"])
def test_seedream_without_auto_returns_one_image_whatever_the_options(api: Api, mode):
    api.server.max_side = 16
    body = {"sequential_image_generation": mode} if mode else {}

    response = api.generate(
        model="bytedance-seedream-4", sequential_image_generation_options={"max_images": 4}, **body
    )

    assert len(response.json()["data"]) == 1


def test_same_prompt_and_seed_give_identical_bytes(api: Api):
    first = api.generate(size="64x64", seed=42).json()["data"][0]["b64_json"]
    second = api.generate(size="64x64", seed=42).json()["data"][0]["b64_json"]

    assert first == second


@pytest.mark.parametrize("change", [{"prompt": "a blue whale"}, {"seed": 43}])
def test_different_prompt_or_seed_give_different_bytes(api: Api, change):
    first = api.generate(size="64x64", seed=42).json()["data"][0]["b64_json"]
    second = api.generate(**{"size": "64x64", "seed": 42, **change}).json()["data"][0]["b64_json"]

    assert first != second


def test_max_side_scales_down_keeping_aspect_ratio(api: Api):
    api.server.max_side = 100
    b64 = api.generate(size="400x200", output_format="png").json()["data"][0]["b64_json"]

    assert decode_image(b64).size == (100, 50)


def test_noise_images_do_not_compress(api: Api):
    api.server.noise = True
    b64 = api.generate(size="128x128", output_format="png").json()["data"][0]["b64_json"]

    assert len(base64.b64decode(b64)) > 128 * 128 * 3


def test_unknown_parameters_pass_through(api: Api):
    response = api.generate(size="64x64", style="vivid", negative_prompt="rain", watermark=False, foo=1)

    assert response.status_code == 200


def test_every_response_carries_a_unique_request_id(api: Api):
    ids = [
        api.get("/models").headers["x-request-id"],
        api.generate(size="64x64").headers["x-request-id"],
        api.generate(model="nope").headers["x-request-id"],
        api.get("/nowhere").headers["x-request-id"],
    ]

    assert all(ids)
    assert len(set(ids)) == len(ids)


def test_request_log_notes_whether_an_authorization_header_came(api: Api):
    api.get("/models")
    requests.get(api.server.base_url + "/models", timeout=TIMEOUT)

    assert [(r.status, r.authorization, r.origin) for r in api.server.requests] == [
        (200, True, "api"),
        (401, False, "api"),
    ]


def test_request_log_records_each_request(api: Api):
    api.get("/models")
    api.generate(size="64x64", prompt="a lighthouse")
    api.generate(model="nope")

    records = api.server.requests
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/v1/models", 200),
        ("POST", "/v1/images/generations", 200),
        ("POST", "/v1/images/generations", 404),
    ]
    assert (records[1].model, records[1].prompt, records[1].fault) == (
        "stable-image-core-1.1",
        "a lighthouse",
        None,
    )
    assert records[2].model == "nope"
    assert all(r.started <= r.finished for r in records)
    assert len(api.server.requests_to("/images/generations")) == 2
    assert api.server.generation_count == 2


def test_reset_clears_log_counters_and_faults(api: Api):
    api.server.faults.script(["503"])
    api.get("/models")

    api.server.reset()

    assert api.server.requests == []
    assert api.server.generation_count == 0
    assert api.server.peak_concurrency == 0
    assert api.server.faults.pending() == 0
    assert api.generate(size="64x64").status_code == 200


def test_file_store_evicts_the_oldest_files_beyond_its_bounds():
    store = FileStore(max_files=3, max_bytes=10)
    for name in "abcd":
        store.put(name, b"12", "image/png")
    assert len(store) == 3
    assert store.get("a") is None

    store.put("big", b"123456789", "image/png")

    assert [name for name in "abcd" if store.get(name)] == []
    assert store.get("big") is not None
