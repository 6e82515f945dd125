"""What a generating task writes to its log as prompts are stored: a line per image, or progress.

A try of at most :data:`LOG_EACH_IMAGE_UP_TO` prompts logs one INFO line per image; above that,
each image's line is at DEBUG and an INFO progress line marks every 1/:data:`PROGRESS_STEPS` of the
prompts, so a task log stays readable at 10 000 prompts. The operator's ``log_each_image``
overrides the rule either way. Lines carry URIs, counts and sizes only: never a key or a payload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_azerion.sidecar import StoredImage

#: While a try generates at most this many prompts, each image gets an INFO line by default.
LOG_EACH_IMAGE_UP_TO = 50
#: Above it, an INFO progress line marks every 1/PROGRESS_STEPS of the prompts.
PROGRESS_STEPS = 20


class Progress:
    """Per-image log lines for small batches, a progress line every 5 % for large ones.

    :param log: the task's logger.
    :param total: prompts this try generates.
    :param each_image: the operator's ``log_each_image`` (``None``: by the batch's size).
    """

    def __init__(self, log: Any, total: int, each_image: bool | None) -> None:
        self.log = log
        self.total = total
        self.each_image = total <= LOG_EACH_IMAGE_UP_TO if each_image is None else each_image
        is_enabled = getattr(log, "isEnabledFor", None)
        self.debug = bool(is_enabled(logging.DEBUG)) if is_enabled is not None else False
        self.step = max(1, -(-total // PROGRESS_STEPS))  # ceil
        self.next_line = self.step
        self.prompts = self.images = self.bytes = 0
        self.started = time.monotonic()

    def stored(self, index: int, images: Sequence[StoredImage], seconds: float) -> None:
        """Count one stored prompt: its images' lines, and progress when it crosses the next step."""
        if self.each_image or self.debug:
            line = self.log.info if self.each_image else self.log.debug
            for image in images:
                line(
                    "Prompt %d image %d: wrote %s (%d bytes, generated in %.2f s)",
                    index,
                    image.metadata["image_index"],
                    image.uri,
                    image.metadata["bytes"],
                    seconds,
                )
        self.prompts += 1
        self.images += len(images)
        self.bytes += sum(image.metadata["bytes"] for image in images)
        if self.each_image or self.prompts < self.next_line:
            return
        self.next_line += self.step
        elapsed = time.monotonic() - self.started
        self.log.info(
            "Progress: %d of %d prompt(s) stored (%d%%), %d image(s), %d bytes, in %.1f s (%.1f prompts/s); "
            "latest %s",
            self.prompts,
            self.total,
            100 * self.prompts // self.total,
            self.images,
            self.bytes,
            elapsed,
            self.prompts / elapsed if elapsed > 0 else 0.0,
            images[-1].uri if images else "-",
        )
