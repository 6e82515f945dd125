"""Typed, immutable views of Azerion API responses.

The hook turns JSON bodies into these once, so the rest of the provider never digs through
nested dicts. Image payloads are kept out of ``repr`` so they can never end up in a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pendulum import DateTime


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Usage:
    """Token accounting of one request (Azerion currently reports zeros)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    image_tokens: int = 0
    text_tokens: int = 0

    @classmethod
    def from_api(cls, data: Any) -> Usage:
        """Build from the ``usage`` object of a response; tolerate it being absent or partial."""
        if not isinstance(data, dict):
            return cls()
        details = data.get("input_tokens_details")
        details = details if isinstance(details, dict) else {}
        return cls(
            input_tokens=_int(data.get("input_tokens")),
            output_tokens=_int(data.get("output_tokens")),
            total_tokens=_int(data.get("total_tokens")),
            image_tokens=_int(details.get("image_tokens")),
            text_tokens=_int(details.get("text_tokens")),
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            image_tokens=self.image_tokens + other.image_tokens,
            text_tokens=self.text_tokens + other.text_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in the API's own shape, for sidecars and XCom."""
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"image_tokens": self.image_tokens, "text_tokens": self.text_tokens},
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class GeneratedImage:
    """One image of a response: exactly one of ``b64_json`` or ``url`` is set."""

    b64_json: str | None = field(default=None, repr=False)
    url: str | None = field(default=None, repr=False)
    revised_prompt: str | None = None

    def __repr__(self) -> str:
        kind = "b64_json" if self.b64_json is not None else "url" if self.url is not None else "empty"
        size = f", {len(self.b64_json)} base64 chars" if self.b64_json is not None else ""
        return f"GeneratedImage({kind}{size}, revised_prompt={self.revised_prompt!r})"


@dataclass(frozen=True)
class ImageGenerationResponse:
    """The result of ``POST /images/generations``."""

    created: DateTime
    images: tuple[GeneratedImage, ...]
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
