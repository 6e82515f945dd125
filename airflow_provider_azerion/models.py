"""Typed, immutable requests to and responses from the Azerion API.

:class:`ImageGenerationRequest` is the one place the rules of a generation request live: the hook
sends it, the operator validates its arguments with it before anything is sent, and the resume
key of stored images is its :meth:`~ImageGenerationRequest.api_params`. Responses are parsed once
into :class:`ImageGenerationResponse`, next to their types, so the rest of the provider never digs
through nested dicts. Image payloads are kept out of ``repr`` so they never end up in a log line.

Light on purpose (no Airflow, no ``requests``): the operator imports it while validating.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion.constants import DEFAULT_MAX_PROMPTS, MAX_PROMPT_LENGTH, RESPONSE_FORMATS
from airflow_provider_azerion.exceptions import AzerionResponseError, AzerionValidationError

if TYPE_CHECKING:
    from pendulum import DateTime

#: Request keys with their own argument; setting them among the extra parameters is a mistake.
RESERVED_PARAMS = ("prompt", "model", "response_format", "style")
#: ``n`` as OpenAI-compatible image APIs take it (inferred for Azerion: see docs/API.md).
MAX_N = 10


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class ImageGenerationRequest:
    """Everything of a ``POST /images/generations`` body except the prompt, validated once.

    Build it with :meth:`of` (the hook's keyword form) or :meth:`from_arguments` (the operator's
    form, with ``n`` and ``extra_params`` apart); an invalid argument raises at once, before
    anything is sent. Both check the same rules, stated here only.

    :param model: model id, e.g. ``stable-image-core-1.1``.
    :param response_format: ``b64_json`` (inline) or ``url`` (a result link to download).
    :param style: e.g. ``vivid``; not sent when ``None``.
    :param params: further API parameters sent as they are (``size``, ``n``, ``seed``...),
        ``None`` values dropped, as a read-only mapping of JSON values.
    """

    model: str
    response_format: str = "b64_json"
    style: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_arguments(
        cls,
        model: Any,
        response_format: Any = "b64_json",
        style: Any = None,
        n: Any = None,
        extra_params: Any = None,
    ) -> ImageGenerationRequest:
        """Validate an operator's arguments (``n`` and ``extra_params`` given apart) and build the request.

        :raises AzerionValidationError: naming the argument and the rule it breaks.
        """
        if extra_params is not None and not isinstance(extra_params, Mapping):
            raise AzerionValidationError(
                f"extra_params must be a dict of API parameters, got {type(extra_params).__name__}"
            )
        params = dict(extra_params or {})
        if n is not None:
            if "n" in params:
                raise AzerionValidationError("n is set both as an argument and in extra_params; set it once")
            params["n"] = n
        return cls.of(model, response_format, style, **params)

    @classmethod
    def of(
        cls, model: Any, response_format: Any = "b64_json", style: Any = None, /, **params: Any
    ) -> ImageGenerationRequest:
        """Validate the arguments and build the request.

        :raises AzerionValidationError: naming the argument and the rule it breaks.
        """
        if not isinstance(model, str) or not model.strip():
            raise AzerionValidationError("model must be a non-empty str, e.g. 'stable-image-core-1.1'")
        if response_format not in RESPONSE_FORMATS:
            raise AzerionValidationError(
                f"response_format must be one of {RESPONSE_FORMATS}, got {response_format!r}"
            )
        if style is not None and not isinstance(style, str):
            raise AzerionValidationError(f"style must be a str or None, got {type(style).__name__}")
        for key in RESERVED_PARAMS:
            if key in params:
                raise AzerionValidationError(
                    f"extra_params must not set {key!r}; use the {key} argument instead"
                )
        kept = {key: value for key, value in params.items() if value is not None}
        n = kept.get("n")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N):
            raise AzerionValidationError(f"n must be an int from 1 to {MAX_N}, got {n!r}")
        try:
            frozen = json.loads(json.dumps(kept))
        except (TypeError, ValueError) as err:
            raise AzerionValidationError(f"extra API parameters must be JSON-serialisable: {err}") from None
        return cls(model=model, response_format=response_format, style=style, params=MappingProxyType(frozen))

    @staticmethod
    def check_prompt(prompt: Any) -> str:
        """Return ``prompt`` if the API would accept it.

        :raises AzerionValidationError: for a non-str, empty or too long prompt.
        """
        if not isinstance(prompt, str):
            raise AzerionValidationError(f"prompt must be a str, got {type(prompt).__name__}")
        if not prompt.strip():
            raise AzerionValidationError("prompt is empty; describe the image to generate")
        if len(prompt) > MAX_PROMPT_LENGTH:
            raise AzerionValidationError(
                f"prompt is {len(prompt)} characters; the Azerion API accepts at most {MAX_PROMPT_LENGTH}"
            )
        return prompt

    def api_params(self) -> dict[str, Any]:
        """What is sent besides the prompt, as sent: recorded in sidecars, compared on resume."""
        params: dict[str, Any] = {"model": self.model, "response_format": self.response_format}
        if self.style is not None:
            params["style"] = self.style
        params.update(json.loads(json.dumps(dict(self.params))))
        return params

    def body(self, prompt: str) -> dict[str, Any]:
        """The JSON body for ``prompt`` (checked)."""
        return {"prompt": self.check_prompt(prompt), **self.api_params()}

    @property
    def max_images_per_prompt(self) -> int:
        """How many images one prompt may return at most, for the spend guard: never an undercount.

        ``n`` images (default 1), and with seedream's ``sequential_image_generation="auto"`` up to
        ``sequential_image_generation_options.max_images`` (15 without it) for each of them. How
        ``n`` and ``"auto"`` combine is not documented (docs/API.md); the product is the bound
        that holds whichever way the API combines them.
        """
        n = self.params.get("n")
        per_request = n if isinstance(n, int) and not isinstance(n, bool) else 1
        if self.params.get("sequential_image_generation") == "auto":
            options = self.params.get("sequential_image_generation_options")
            wanted = options.get("max_images") if isinstance(options, Mapping) else None
            # Without max_images the model picks how many (inferred bound: Volcengine allows 15).
            sequence = wanted if isinstance(wanted, int) and not isinstance(wanted, bool) else 15
            return per_request * max(sequence, 1)
        return per_request


@dataclass(frozen=True)
class GenerationPlan:
    """The prompts one task will generate and the request they share, within the spend guard.

    :param request: the validated request every prompt is sent with.
    :param prompts: the prompts, by index.
    """

    request: ImageGenerationRequest
    prompts: tuple[str, ...]

    @classmethod
    def of(
        cls,
        prompt: Any,
        request: ImageGenerationRequest,
        *,
        max_prompts: Any = DEFAULT_MAX_PROMPTS,
        max_images: Any = None,
    ) -> GenerationPlan:
        """Check every prompt and the spend guard before anything is sent.

        :param prompt: one prompt or a sequence of them.
        :param max_prompts: most prompts allowed (every prompt is a paid generation).
        :param max_images: most images allowed; ``None`` for ``max_prompts`` x images per prompt.
        :raises AzerionValidationError: naming the argument (and prompt index) at fault.
        """
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
            prompts = list(prompt)
        else:
            raise AzerionValidationError(
                f"prompt must be a str or a list of str, got {type(prompt).__name__}"
            )
        if not prompts:
            raise AzerionValidationError("prompt is an empty list; give at least one prompt")
        for name, limit in (("max_prompts", max_prompts), ("max_images", max_images)):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise AzerionValidationError(f"{name} must be an int >= 1, got {limit!r}")
        if len(prompts) > max_prompts:
            raise AzerionValidationError(
                f"prompt holds {len(prompts)} prompts, more than max_prompts={max_prompts}; nothing "
                f"was sent. If that many paid generations are intended, raise max_prompts (e.g. "
                f"max_prompts={len(prompts)}) or split the prompts over mapped tasks with .expand()"
            )
        per_prompt = request.max_images_per_prompt
        limit = max_images if max_images is not None else max_prompts * per_prompt
        if len(prompts) * per_prompt > limit:
            raise AzerionValidationError(
                f"{len(prompts)} prompts x up to {per_prompt} images each = {len(prompts) * per_prompt} "
                f"images, more than max_images={limit}; nothing was sent. If that many paid images "
                f"are intended, raise max_images (e.g. max_images={len(prompts) * per_prompt}), or ask "
                "for fewer images per prompt (n, or sequential_image_generation_options.max_images)"
            )
        for index, text in enumerate(prompts):
            try:
                ImageGenerationRequest.check_prompt(text)
            except AzerionValidationError as err:
                raise AzerionValidationError(f"prompt {index}: {err}") from None
        return cls(request=request, prompts=tuple(prompts))


@dataclass(frozen=True)
class Usage:
    """Accounting of one request: the totals logs need, and the object exactly as the API sent it.

    Models report different fields (Azerion's example: ``input_tokens``, ``input_tokens_details``,
    ``output_tokens``, ``total_tokens``; seedream also ``generated_images``); missing ones count 0.

    :param raw: the ``usage`` object as received (``None`` when the response had none); kept
        verbatim in sidecars.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    image_tokens: int = 0
    text_tokens: int = 0
    generated_images: int = 0
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

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
            generated_images=_int(data.get("generated_images")),
            raw=data,
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            image_tokens=self.image_tokens + other.image_tokens,
            text_tokens=self.text_tokens + other.text_tokens,
            generated_images=self.generated_images + other.generated_images,
        )

    def to_dict(self) -> dict[str, Any] | None:
        """The object as the API sent it (a copy), or ``None`` when it sent none."""
        return json.loads(json.dumps(dict(self.raw))) if self.raw is not None else None


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

    @classmethod
    def from_api(cls, body: Any, request_id: str | None = None) -> ImageGenerationResponse:
        """Parse a response body.

        :raises AzerionResponseError: when it holds no usable image.
        """
        import pendulum

        where = f"[request id {request_id or 'unknown'}]"
        if not isinstance(body, dict):
            raise AzerionResponseError(
                f"Azerion API returned a generation response that is not a JSON object {where}"
            )
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise AzerionResponseError(
                f"Azerion API returned no images (empty 'data') {where}. "
                "The prompt may have been filtered; the task's retries may succeed."
            )
        images = []
        for item in data:
            item = item if isinstance(item, dict) else {}
            b64, url = item.get("b64_json"), item.get("url")
            if not isinstance(b64, str) and not isinstance(url, str):
                raise AzerionResponseError(
                    f"Azerion API returned an image entry with neither b64_json nor url {where}"
                )
            revised = item.get("revised_prompt") or body.get("revised_prompt")
            images.append(
                GeneratedImage(
                    b64_json=b64 if isinstance(b64, str) else None,
                    url=url if isinstance(url, str) and not isinstance(b64, str) else None,
                    revised_prompt=revised if isinstance(revised, str) else None,
                )
            )
        created = body.get("created")
        when = (
            pendulum.from_timestamp(created)
            if isinstance(created, (int, float)) and not isinstance(created, bool)
            else pendulum.now("UTC")
        )
        return cls(
            created=when, images=tuple(images), usage=Usage.from_api(body.get("usage")), request_id=request_id
        )
