"""Recognise image bytes by their magic numbers, and read their pixel size, without Pillow.

The API says nothing reliable about what it returned: ``output_format`` may be ignored, a URL's
``Content-Type`` may be generic, and a broken gateway may hand back HTML or JSON with status 200.
The bytes themselves are the only trustworthy witness, so file extensions and media types come
from here, never from the request.

Every format the operator stores states its pixel size in its first bytes (JPEG: in its frame
header, usually within the first kilobytes), so the sidecars record ``width`` and ``height`` and
the Images tab sizes its grid without decoding a single image.
"""

from __future__ import annotations

import struct
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


#: Bytes read from the start of an image to find its size: first a few, then more if need be.
SHORT_HEAD_BYTES = 2 * 1024
HEAD_BYTES = 64 * 1024

# JPEG start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})


def image_dimensions(head: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG, WebP or GIF image from its leading bytes.

    :param head: the first bytes of the file (:data:`HEAD_BYTES` are enough for the images the
        operator stores; a JPEG whose frame header comes later gives ``None``).
    :return: ``(width, height)``, or ``None`` when the bytes are not one of these formats or the
        size is not within them.
    """
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return _positive(*struct.unpack(">II", head[16:24]))
        if head.startswith((b"GIF87a", b"GIF89a")):
            return _positive(*struct.unpack("<HH", head[6:10]))
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            return _webp(head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg(head)
    except struct.error:  # cut short
        return None
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 ":  # lossy: a key frame's start code, then 14-bit width and height
        if head[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", head[26:30])
        return _positive(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":  # lossless: signature byte, then 14 bits of width-1 and of height-1
        if head[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", head[21:25])
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return _positive(width, height)
    return None


def _jpeg(head: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 4 <= len(head):
        if head[offset] != 0xFF:
            return None
        marker = head[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _JPEG_STANDALONE:
            offset += 2
            continue
        (length,) = struct.unpack(">H", head[offset + 2 : offset + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", head[offset + 5 : offset + 9])
            return _positive(width, height)
        if marker == 0xDA:  # start of scan: no frame header before the image data
            return None
        offset += 2 + length
    return None
