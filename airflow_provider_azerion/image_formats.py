"""Recognise image bytes by their magic numbers.

The API says nothing reliable about what it returned: ``output_format`` may be ignored, a URL's
``Content-Type`` may be generic, and a broken gateway may hand back HTML or JSON with status 200.
The bytes themselves are the only trustworthy witness, so file extensions and media types come
from here, never from the request.
"""

from __future__ import annotations

from typing import NamedTuple


class ImageFormat(NamedTuple):
    """What a blob of image bytes is: the file extension to store it under and its media type."""

    extension: str
    media_type: str


PNG = ImageFormat("png", "image/png")
JPEG = ImageFormat("jpg", "image/jpeg")
WEBP = ImageFormat("webp", "image/webp")
GIF = ImageFormat("gif", "image/gif")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_GIF_SIGNATURES = (b"GIF87a", b"GIF89a")


def sniff_image_format(data: bytes) -> ImageFormat | None:
    """Tell PNG, JPEG, WebP and GIF apart by their leading bytes.

    :param data: the image bytes (only the first 12 are looked at).
    :return: the format, or ``None`` when the bytes are not one of these images.
    """
    head = bytes(data[:12])
    if head.startswith(_PNG_SIGNATURE):
        return PNG
    if head.startswith(_JPEG_SIGNATURE):
        return JPEG
    # RIFF container: "RIFF", 4-byte little-endian size, then the form type.
    if len(head) == 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(_GIF_SIGNATURES):
        return GIF
    return None
