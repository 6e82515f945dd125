"""Thumbnails (Pillow, cached) and pixel sizes read from image headers (no Pillow)."""

from __future__ import annotations

import io
import struct
import sys
import threading
import zlib

import pytest
from PIL import Image

from airflow_provider_azerion.image_formats import image_dimensions
from airflow_provider_azerion.plugins.thumbnail_store import DiskCache
from airflow_provider_azerion.plugins.thumbnail_store import MemoryCache as ThumbnailCache
from airflow_provider_azerion.plugins.thumbnails import MAX_SIDE, Thumbnail, ThumbnailError, make_thumbnail


def encode(size: tuple[int, int], fmt: str, mode: str = "RGB", **options) -> bytes:
    image = Image.new(mode, size, (200, 30, 60, 128)[: len(mode)] if mode != "P" else 3)
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decoded(thumbnail: Thumbnail) -> Image.Image:
    image = Image.open(io.BytesIO(thumbnail.content))
    image.load()
    return image


# -- pixel sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "RGB", {}),
        ("PNG", "RGBA", {}),
        ("JPEG", "RGB", {}),
        ("JPEG", "RGB", {"progressive": True}),
        ("JPEG", "RGB", {"exif": b"Exif\x00\x00" + b"II*\x00\x08\x00\x00\x00\x00\x00" + b"\x00" * 2000}),
        ("WEBP", "RGB", {"quality": 80}),
        ("WEBP", "RGB", {"lossless": True}),
        ("WEBP", "RGBA", {"quality": 80}),
        ("GIF", "P", {}),
    ],
)
@pytest.mark.parametrize("size", [(1024, 1024), (1536, 640), (1, 3000)])
def test_pixel_sizes_come_from_the_first_bytes_as_pillow_reads_them(fmt, mode, options, size):
    data = encode(size, fmt, mode, **options)

    assert image_dimensions(data[:4096]) == size


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff\xe0\x00",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"GIF89a",
        b"<svg/>",
    ],
)
def test_pixel_sizes_of_unknown_or_cut_bytes_are_unknown(data):
    assert image_dimensions(data) is None


# -- thumbnails -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1024, 1024), (256, 256)), ((2048, 512), (256, 64)), ((300, 1200), (64, 256)), ((64, 48), (64, 48))],
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_thumbnails_fit_256_px_and_are_never_enlarged(size, expected, fmt):
    thumbnail = make_thumbnail(encode(size, fmt, "P" if fmt == "GIF" else "RGB"))

    assert decoded(thumbnail).size == expected
    assert max(decoded(thumbnail).size) <= MAX_SIDE
    assert thumbnail.media_type == "image/jpeg"
    assert thumbnail.source_size == size


def test_transparency_survives_in_the_thumbnail():
    thumbnail = make_thumbnail(encode((512, 512), "PNG", "RGBA"))

    assert thumbnail.media_type == "image/webp"
    assert decoded(thumbnail).mode == "RGBA"


def test_a_thumbnail_of_a_large_image_is_a_small_fraction_of_it():
    import random

    noise = Image.frombytes("RGB", (1024, 1024), random.Random(7).randbytes(1024 * 1024 * 3))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=90)

    thumbnail = make_thumbnail(out.getvalue())

    assert len(thumbnail.content) * 10 < len(out.getvalue())


@pytest.mark.parametrize(
    "data",
    [
        b"not an image at all",
        encode((64, 64), "JPEG")[:200],  # cut short
        encode((64, 64), "BMP"),  # a format the operator never stores
        encode((64, 64), "TIFF"),
    ],
)
def test_bytes_that_are_not_a_stored_image_format_get_no_thumbnail(data):
    with pytest.raises(ThumbnailError) as caught:
        make_thumbnail(data)

    assert caught.value.status == 422


def test_an_image_declaring_too_many_pixels_is_not_decoded():
    data = bytearray(encode((16, 16), "PNG"))
    ihdr = bytes(data[12:16]) + struct.pack(">II", 20_000, 20_000) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))

    with pytest.raises(ThumbnailError) as caught:
        make_thumbnail(bytes(data))

    assert caught.value.status == 422


def test_without_pillow_the_error_says_how_to_install_it(monkeypatch):
    data = encode((64, 64), "PNG")
    monkeypatch.setitem(sys.modules, "PIL", None)

    with pytest.raises(ThumbnailError) as caught:
        make_thumbnail(data)

    assert caught.value.status == 501
    assert 'pip install "airflow-provider-azerion[ui]"' in str(caught.value)


# -- the caches ------------------------------------------------------------------------------------


def thumbnail_of(size: int) -> Thumbnail:
    return Thumbnail(b"x" * size, "image/webp", "etag", (1, 1))


def test_concurrent_requests_for_one_thumbnail_make_it_once():
    cache = ThumbnailCache()
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow_make() -> Thumbnail:
        calls.append(1)
        started.set()
        release.wait(10)
        return thumbnail_of(10)

    results: list[Thumbnail] = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_make("k", slow_make)))
    first.start()
    started.wait(10)
    second = threading.Thread(target=lambda: results.append(cache.get_or_make("k", slow_make)))
    second.start()
    release.set()
    first.join(10)
    second.join(10)

    assert len(calls) == 1
    assert len(results) == 2
    assert results[0] is results[1]
    assert cache.made == {"k": 1}


def test_the_cache_keeps_at_most_its_byte_budget_dropping_the_least_recently_used():
    cache = ThumbnailCache(max_bytes=100)
    for key in ("a", "b", "c"):
        cache.get_or_make(key, lambda: thumbnail_of(40))
    cache.get_or_make("b", lambda: thumbnail_of(40))  # a hit: "b" is now the most recent

    cache.get_or_make("d", lambda: thumbnail_of(40))

    remade = []
    for key in ("a", "b", "c", "d"):
        cache.get_or_make(key, lambda key=key: remade.append(key) or thumbnail_of(1))
    assert remade == ["a", "c"]


def test_a_failure_is_not_cached():
    cache = ThumbnailCache()

    def broken() -> Thumbnail:
        raise ThumbnailError(422, "cannot decode")

    with pytest.raises(ThumbnailError):
        cache.get_or_make("k", broken)

    assert cache.get_or_make("k", lambda: thumbnail_of(5)).content == b"x" * 5


def test_the_disk_cache_is_shared_by_processes_and_survives_them(tmp_path):
    made = []
    thumbnail = Thumbnail(b"\xff\xd8\xff thumbnail", "image/jpeg", "0123456789abcdef", (1024, 768))
    # Two instances on one folder: what two API server workers, or a restarted one, see.
    first, second = DiskCache(tmp_path), DiskCache(tmp_path)

    one = first.get_or_make(("file:///x/0000-0.jpg", 10, "1.0"), lambda: made.append(1) or thumbnail)
    two = second.get_or_make(("file:///x/0000-0.jpg", 10, "1.0"), lambda: made.append(2) or thumbnail)
    other = second.get_or_make(("file:///x/0000-0.jpg", 11, "2.0"), lambda: made.append(3) or thumbnail)

    assert made == [1, 3]  # a new version of the image is a new thumbnail
    assert one == two == other == thumbnail


def test_processes_making_one_thumbnail_at_once_make_it_once(tmp_path):
    first, second = DiskCache(tmp_path), DiskCache(tmp_path)
    started, release = threading.Event(), threading.Event()
    made = []

    def slow() -> Thumbnail:
        made.append(1)
        started.set()
        release.wait(10)
        return thumbnail_of(10)

    results: list[Thumbnail] = []
    one = threading.Thread(target=lambda: results.append(first.get_or_make("k", slow)))
    one.start()
    started.wait(10)
    two = threading.Thread(target=lambda: results.append(second.get_or_make("k", slow)))
    two.start()
    release.set()
    one.join(10)
    two.join(10)

    assert made == [1]
    assert results == [thumbnail_of(10), thumbnail_of(10)]


def test_the_disk_cache_keeps_to_its_byte_budget(tmp_path):
    import os
    import time

    cache = DiskCache(tmp_path, max_bytes=10_000)
    for index in range(20):
        cache.get_or_make(index, lambda: thumbnail_of(1000))
        path = next(p for p in tmp_path.glob("??/*") if p.stat().st_mtime > time.time() - 100)
        os.utime(path, (index, index))  # distinct ages, oldest first
    cache.trim()

    kept = sum(p.stat().st_size for p in tmp_path.glob("??/*"))
    assert kept <= 10_000


def test_a_corrupt_disk_entry_is_made_again(tmp_path):
    cache = DiskCache(tmp_path)
    cache.get_or_make("k", lambda: thumbnail_of(5))
    for path in tmp_path.glob("??/*"):
        path.write_bytes(b"garbage")

    assert cache.get_or_make("k", lambda: thumbnail_of(7)).content == b"x" * 7
