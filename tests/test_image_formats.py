"""Image formats are recognised from the bytes themselves."""

from __future__ import annotations

import io

import pytest

from airflow_provider_azerion.image_formats import GIF, JPEG, PNG, WEBP, ImageFormat, sniff_image_format


def encode(pil_format: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format=pil_format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("pil_format", "expected"),
    [("PNG", PNG), ("JPEG", JPEG), ("WEBP", WEBP), ("GIF", GIF)],
)
def test_real_images_are_recognised(pil_format, expected):
    assert sniff_image_format(encode(pil_format)) == expected


def test_a_format_gives_extension_and_media_type():
    assert sniff_image_format(encode("JPEG")) == ImageFormat(extension="jpg", media_type="image/jpeg")
    assert WEBP.extension == "webp"
    assert WEBP.media_type == "image/webp"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PN",
        b"<!DOCTYPE html><html>502 Bad Gateway</html>",
        b'{"error": {"message": "nope"}}',
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a RIFF container, but audio
        b"RIFF\x24\x00",
        b"/9j/4AAQSkZJRgABAQ",  # base64 *text* of a JPEG, not the JPEG
        b"hello world",
    ],
)
def test_anything_else_is_not_an_image(data):
    assert sniff_image_format(data) is None


def test_memoryview_and_bytearray_work_too():
    data = encode("PNG")
    assert sniff_image_format(bytearray(data)) == PNG
    assert sniff_image_format(memoryview(data)) == PNG  # type: ignore[arg-type]
