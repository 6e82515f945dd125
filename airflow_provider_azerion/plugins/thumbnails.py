"""Thumbnails for the Images page, made on the API server with Pillow.

A generated image often weighs 1-4 MiB; a grid of a hundred must not pull them all. Each
thumbnail is at most :data:`MAX_SIDE` pixels on its longest side: JPEG, or WebP when the image has
transparency, tens of KiB at most. :mod:`.thumbnail_store` caches them.

Pillow comes with the ``ui`` extra (``pip install "airflow-provider-azerion[ui]"`` on the API
server) and is imported only here, when a thumbnail is made.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

#: Longest side of a thumbnail, in pixels.
MAX_SIDE = 256
#: Images larger than this are not read to make a thumbnail (the full image link still works).
MAX_SOURCE_BYTES = 64 * 1024 * 1024
#: Images with more pixels than this are not decoded (a decompression bomb guard).
MAX_SOURCE_PIXELS = 64_000_000
#: Quality of JPEG thumbnails (opaque images) and WebP ones (images with transparency).
JPEG_QUALITY = 80
#: Pillow formats a thumbnail is made from.
SOURCE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
PILLOW_MISSING = (
    "Thumbnails need Pillow on the Airflow API server: "
    'pip install "airflow-provider-azerion[ui]" there and restart the API server.'
)


class ThumbnailError(Exception):
    """No thumbnail can be made; ``status`` is the HTTP status to answer with.

    :param status: 501 when Pillow is missing, 422 when the image cannot be decoded or is too big.
    :param message: what a person can do about it.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Thumbnail:
    """An encoded thumbnail.

    :param content: the encoded bytes.
    :param media_type: their media type: ``image/jpeg``, or for images with transparency
        ``image/webp`` (``image/png`` when Pillow lacks WebP).
    :param etag: a short digest of the source image, to validate browser caches.
    :param source_size: width and height of the source image.
    """

    content: bytes
    media_type: str
    etag: str
    source_size: tuple[int, int]


def pillow_available() -> bool:
    """Whether Pillow can be imported, checked without importing it."""
    from importlib.util import find_spec

    return find_spec("PIL") is not None


def source_etag(data: bytes) -> str:
    """The digest thumbnails of ``data`` are validated with: the first 16 hex digits of its SHA-256.

    The same prefix of the sidecar's ``sha256``, so a page can put it in thumbnail URLs.
    """
    return hashlib.sha256(data).hexdigest()[:16]


def make_thumbnail(data: bytes) -> Thumbnail:
    """Scale an image down to at most :data:`MAX_SIDE` pixels on its longest side.

    :param data: the image's bytes (PNG, JPEG, WebP or GIF; a GIF gives its first frame).
    :raises ThumbnailError: when Pillow is missing or the image cannot be decoded.
    """
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError, features
    except ImportError:
        raise ThumbnailError(501, PILLOW_MISSING) from None

    if len(data) > MAX_SOURCE_BYTES:
        raise ThumbnailError(422, f"image of {len(data)} bytes is too large for a thumbnail")
    try:
        # Only the formats the operator stores: Pillow would also open EPS, PSD, ICNS and more.
        with Image.open(io.BytesIO(data), formats=SOURCE_FORMATS) as image:
            source_size = image.size
            if source_size[0] * source_size[1] > MAX_SOURCE_PIXELS:
                raise ThumbnailError(422, f"image of {source_size[0]}x{source_size[1]} pixels is too large")
            # JPEG only: decode at 1/2, 1/4 or 1/8 scale straight away, several times faster.
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))
            picture = ImageOps.exif_transpose(image)
            alpha = _has_alpha(picture)
            picture = picture.convert("RGBA" if alpha else "RGB")
            picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
            out = io.BytesIO()
            if not alpha:  # JPEG: encoded in well under a millisecond, and small
                picture.save(out, "JPEG", quality=JPEG_QUALITY)
                media_type = "image/jpeg"
            elif features.check("webp"):
                picture.save(out, "WEBP", quality=JPEG_QUALITY, method=2)
                media_type = "image/webp"
            else:
                picture.save(out, "PNG")
                media_type = "image/png"
    except ThumbnailError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise ThumbnailError(422, f"the image cannot be decoded: {err}") from None
    return Thumbnail(out.getvalue(), media_type, source_etag(data), source_size)


def _has_alpha(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
