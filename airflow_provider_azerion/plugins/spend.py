"""Count what a task instance's folder cost: images, bytes, generations and tokens.

One job: :func:`tally` turns a folder's images (each its size from the listing and its sidecar,
if it has one yet) into a :class:`Spend`. Pure: it reads nothing; :mod:`.gallery` gathers the
sidecars (or manifest lines) and the pages (:mod:`.views`) add task instances up.

The rules, from the sidecar schema (:mod:`airflow_provider_azerion.sidecar`):

- images: every image listed; bytes: the sum of their sizes (listed, so images still without a
  sidecar count too);
- generations: distinct ``prompt_index`` among the images with a sidecar (one paid request per
  prompt, whatever the number of images it returned);
- tokens: ``usage.total_tokens`` as the API reported it, once per prompt (every image of a prompt
  carries the same usage; the one of its lowest ``image_index`` is taken); missing counts 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Where the figures come from, for the pages' tooltips.
SOURCE = (
    "From the sidecars: images and bytes as stored, one generation per prompt, "
    "tokens as the API reported them (usage.total_tokens, once per prompt; missing counts 0)."
)


@dataclass(frozen=True)
class Spend:
    """What some stored images cost.

    :param images: how many images.
    :param bytes: their total size.
    :param generations: how many generations (prompts) produced them.
    :param tokens: the tokens those generations used, as the API reported them.
    """

    images: int = 0
    bytes: int = 0
    generations: int = 0
    tokens: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.images + other.images,
            self.bytes + other.bytes,
            self.generations + other.generations,
            self.tokens + other.tokens,
        )


def tally(images: Iterable[tuple[int, Mapping[str, Any] | None]]) -> Spend:
    """The spend of one task instance's images.

    :param images: per image, its size in bytes and its sidecar (``None`` or empty when it has
        none yet: it then counts as an image and its bytes only).
    """
    count = size = 0
    tokens_of: dict[int, tuple[int, int]] = {}  # prompt_index -> (image_index, total_tokens)
    for image_bytes, metadata in images:
        count += 1
        size += _count(image_bytes)
        prompt_index = _int(metadata.get("prompt_index"), -1) if metadata else -1
        if metadata is None or prompt_index < 0:
            continue
        order = _int(metadata.get("image_index"), 1 << 30)
        usage = metadata.get("usage")
        tokens = _count(usage.get("total_tokens")) if isinstance(usage, Mapping) else 0
        if prompt_index not in tokens_of or order < tokens_of[prompt_index][0]:
            tokens_of[prompt_index] = (order, tokens)
    return Spend(count, size, len(tokens_of), sum(tokens for _, tokens in tokens_of.values()))


def total(spends: Iterable[Spend | None]) -> Spend:
    """The sum of ``spends`` (``None``, a folder that could not be read, counts nothing)."""
    result = Spend()
    for spend in spends:
        if spend is not None:
            result += spend
    return result


def _int(value: Any, default: int) -> int:
    """``value`` if it is an int (not a bool), else ``default``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _count(value: Any) -> int:
    """A non-negative int as it is; anything else (missing, text, negative) as 0."""
    return max(_int(value, 0), 0)
