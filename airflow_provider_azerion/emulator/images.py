"""Real, deterministic images for the emulator's responses.

Each image is a two-colour gradient picked from a hash of (prompt, seed, index) with the prompt
written over it, so a person can tell images apart and a test can rely on identical inputs giving
identical bytes. With ``noise=True`` the pixels are seeded random bytes instead, which no codec can
compress: a 2400x2400 PNG of noise weighs about 16.5 MiB, what benchmarks of large payloads need.
"""

from __future__ import annotations

import hashlib
import io
import random
import textwrap
import threading
from collections import OrderedDict
from functools import cache

from PIL import Image, ImageDraw, ImageFont

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_WATERMARK = "AI generated"
#: Rendered bytes kept for repeated identical requests (benchmarks ask for the same image often,
#: and encoding a large noise PNG takes about half a second).
_CACHE_BYTES = 256 * 1024 * 1024


def scale_to_max_side(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Scale a size down so its longest side is at most ``max_side``, keeping the aspect ratio.

    :param width: Requested width.
    :param height: Requested height.
    :param max_side: Longest side allowed; ``None`` leaves the size as it is.
    """
    longest = max(width, height)
    if max_side is None or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_image(
    prompt: str,
    seed: int,
    index: int,
    width: int,
    height: int,
    output_format: str,
    noise: bool = False,
    watermark: bool = False,
) -> bytes:
    """Return the encoded image for these inputs; identical inputs give identical bytes.

    CPU-bound: call it from a worker thread in async code.

    :param prompt: Text drawn on the image, and part of its colour hash.
    :param seed: Seed of the request (or of the server).
    :param index: Position of the image in the response, so the images of one request differ.
    :param width: Width in pixels.
    :param height: Height in pixels.
    :param output_format: ``"jpeg"``, ``"png"`` or ``"webp"``.
    :param noise: Render incompressible noise instead of a gradient with text.
    :param watermark: Mark the bottom-right corner "AI generated", as Seedream marks its images.
    """
    key = (prompt, seed, index, width, height, output_format, noise, watermark)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256(f"{seed}\0{index}\0{prompt}".encode()).digest()
    image = _noise(digest, width, height) if noise else _picture(digest, prompt, index, width, height)
    if watermark:
        _watermark(image)
    buffer = io.BytesIO()
    # Speed over size (PNG level 1, WebP method 0): noise does not compress anyway, and tests and
    # benchmarks want the emulator's own time out of their measurements. Each codec ignores the
    # options of the others.
    image.save(buffer, _PIL_FORMATS[output_format], quality=90, compress_level=0 if noise else 1, method=0)
    content = buffer.getvalue()
    _cache.put(key, content)
    return content


def _noise(digest: bytes, width: int, height: int) -> Image.Image:
    pixels = random.Random(digest).randbytes(width * height * 3)
    return Image.frombytes("RGB", (width, height), pixels)


def _picture(digest: bytes, prompt: str, index: int, width: int, height: int) -> Image.Image:
    start, end = tuple(digest[0:3]), tuple(digest[3:6])
    mask = Image.linear_gradient("L")
    if digest[6] % 2:
        mask = mask.rotate(90)
    image = Image.composite(
        Image.new("RGB", (width, height), end),
        Image.new("RGB", (width, height), start),
        mask.resize((width, height)),
    )
    luminance = sum(start + end) / 6
    ink = (0, 0, 0) if luminance > 128 else (255, 255, 255)
    font_size = max(8, min(width, height) // 16)
    font = _font(font_size)
    margin = max(2, font_size // 2)
    # The default font's glyphs average a little over half the font size in width.
    columns = max(1, int((width - 2 * margin) / (font_size * 0.6)))
    rows = max(1, (height - 2 * margin) // (font_size + 2))
    lines = [f"#{index + 1}", *textwrap.wrap(prompt, columns)][:rows]
    ImageDraw.Draw(image).multiline_text((margin, margin), "\n".join(lines), fill=ink, font=font, spacing=2)
    return image


def _watermark(image: Image.Image) -> None:
    width, height = image.size
    font = _font(max(8, min(width, height) // 24))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), _WATERMARK, font=font)
    margin = max(2, (bottom - top) // 2)
    x, y = width - (right - left) - 2 * margin, height - (bottom - top) - 2 * margin
    # White on a black box: legible on any gradient, and no reliance on FreeType-only stroking.
    draw.rectangle((x - margin, y - margin, width, height), fill=(0, 0, 0))
    draw.text((x - left, y - top), _WATERMARK, fill=(255, 255, 255), font=font)


@cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except ImportError:  # Pillow built without FreeType: only the fixed-size bitmap font exists.
        return ImageFont.load_default()


class _ByteBoundedCache:
    """A thread-safe LRU of rendered images, bounded by their total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[object, ...], value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._size += len(value)
            while self._size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)


_cache = _ByteBoundedCache(_CACHE_BYTES)
