"""How a generation request is checked against the emulated catalogue, status by status.

The rules themselves (limits, sizes, defaults) live in :mod:`~airflow_provider_azerion.emulator.rules`
with their sources. The statuses follow the error-codes page
(https://docs.azerion.ai/api-reference/error-codes): 400 for a malformed body, a missing field or an
invalid value (naming the ``param``), 403 for a model the key may not use, 404 for an unknown model,
422 for a request that is well-formed but cannot be processed. Keys the emulator does not know pass
through silently, as they do on the real API (inferred). Messages follow the OpenAI wording that
Azerion's gateway mirrors (inferred).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from airflow_provider_azerion.emulator.errors import APIError, error_type_for
from airflow_provider_azerion.emulator.rules import (
    ASPECT_RATIOS,
    DEFAULT_SEQUENTIAL_IMAGES,
    MAX_IMAGES,
    MAX_PROMPT_LENGTH,
    MAX_SEED,
    MAX_SEQUENTIAL_IMAGES,
    MAX_SIDE,
    MIN_SIDE,
    MODELS,
    OUTPUT_FORMATS,
    REFERENCE_IMAGE_SCHEMES,
    RESPONSE_FORMATS,
    SEEDREAM_DEFAULT_WATERMARK,
    SEEDREAM_SIZES,
    SEQUENTIAL_MODES,
    ModelSpec,
)

# Re-exported: the catalogue and the error were defined here before rules.py and errors.py existed.
__all__ = ["MODELS", "APIError", "GenerationRequest", "ModelSpec", "error_type_for"]

_SIZE_PATTERN = re.compile(r"^(\d+)[xX](\d+)$")


@dataclass(frozen=True)
class GenerationRequest:
    """A valid generation request, with every default applied.

    :param model: The model's catalogue entry.
    :param prompt: The prompt.
    :param count: How many images to return.
    :param response_format: ``"b64_json"`` or ``"url"``.
    :param output_format: ``"jpeg"``, ``"png"`` or ``"webp"``.
    :param width: Requested width, before the server's ``max_side`` applies.
    :param height: Requested height, before the server's ``max_side`` applies.
    :param seed: The request's seed; ``None`` when absent or ``0`` (random on the real API).
    :param watermark: Whether images carry a watermark (Seedream; always false for other models).
    """

    model: ModelSpec
    prompt: str
    count: int
    response_format: str
    output_format: str
    width: int
    height: int
    seed: int | None
    watermark: bool = False


def decode_json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object, or raise a 400 :class:`APIError`."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise APIError(
            400,
            "We could not parse the JSON body of your request. The body must be valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise APIError(400, "The request body must be a JSON object.", code="invalid_json")
    return payload


def parse_generation_request(
    payload: dict[str, Any], forbidden_models: Collection[str] = ()
) -> GenerationRequest:
    """Check a decoded ``/v1/images/generations`` body and apply the model's defaults.

    :param payload: The decoded JSON body.
    :param forbidden_models: Model ids the caller's key may not use.
    :raises APIError: 400 for a missing or invalid parameter, 403 for a forbidden model, 404 for an
        unknown model, 422 for a valid request the model cannot process.
    """
    # Documented (create-image): model and prompt are required strings.
    model_id = _required_string(payload, "model")
    prompt = _required_string(payload, "prompt")
    # Documented (error-codes): 403 "valid API key but insufficient permissions".
    if model_id in forbidden_models:
        raise APIError(
            403,
            f"Your API key is not allowed to use the model `{model_id}`.",
            code="model_not_allowed",
            param="model",
        )
    model = MODELS.get(model_id)
    if model is None:  # Documented (error-codes): 404 "requested resource (e.g., model) doesn't exist".
        raise APIError(
            404,
            f"The model `{model_id}` does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )
    if not prompt:  # Inferred: an empty prompt describes nothing.
        raise _invalid(
            "prompt", "Invalid 'prompt': empty string. Expected a non-empty string.", "empty_string"
        )
    if len(prompt) > MAX_PROMPT_LENGTH:  # Documented (create-image, seedream-4).
        raise _invalid(
            "prompt",
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{MAX_PROMPT_LENGTH}, but got a string with length {len(prompt)} instead.",
            "string_above_max_length",
        )
    # Documented (create-image): response_format; its default per model is in the catalogue.
    response_format = _choice(payload, "response_format", RESPONSE_FORMATS) or model.response_format
    # Documented (create-image): style, e.g. "vivid". Only its type is checked: the values accepted
    # are not documented (OpenAI's are "vivid" and "natural").
    _optional_string(payload, "style")
    output_format = _choice(payload, "output_format", OUTPUT_FORMATS) or model.output_format  # Inferred.
    seed = _integer(payload, "seed", 0, MAX_SEED)  # Inferred (Stability's range).
    n = _integer(payload, "n", 1, MAX_IMAGES) or 1  # Inferred (OpenAI's range).
    # "quality" (OpenAI-style) is inferred and passes through unchecked, like any unknown key.
    if model.seedream:
        return _seedream_request(payload, model, prompt, response_format, output_format, seed, n)
    if model.aspect_ratios:
        # Inferred (Stability's Stable Image Core): free-text fields that must at least be strings.
        _optional_string(payload, "negative_prompt")
        _optional_string(payload, "style_preset")
    width, height = _free_size(payload, model)
    return GenerationRequest(
        model=model,
        prompt=prompt,
        count=n,
        response_format=response_format,
        output_format=output_format,
        width=width,
        height=height,
        seed=seed or None,
    )


def _seedream_request(
    payload: dict[str, Any],
    model: ModelSpec,
    prompt: str,
    response_format: str,
    output_format: str,
    seed: int | None,
    n: int,
) -> GenerationRequest:
    # Documented (seedream-4): size is exactly one of "2K", "1024x1024", "512x512".
    size = payload.get("size")
    if size is None:
        width, height = model.size
    elif isinstance(size, str) and size in SEEDREAM_SIZES:
        width, height = SEEDREAM_SIZES[size]
    else:
        raise _invalid(
            "size",
            f"Invalid value for 'size': {size!r}. Supported values are: {', '.join(SEEDREAM_SIZES)}.",
        )
    watermark = payload.get("watermark", SEEDREAM_DEFAULT_WATERMARK)  # Documented (seedream-4): boolean.
    if not isinstance(watermark, bool):
        raise _invalid("watermark", "Invalid type for 'watermark': expected a boolean.", "invalid_type")
    references = _reference_images(payload)
    count = _sequential_count(payload, n)
    # Inferred: the provider fetches reference images itself; one it cannot fetch makes a request that
    # parses but cannot be processed: the error-codes page's 422 "semantically incorrect".
    for index, reference in enumerate(references):
        if not reference.startswith(REFERENCE_IMAGE_SCHEMES):
            raise APIError(
                422,
                f"Reference image {index} is neither an http(s) URL nor a data:image URI; "
                "the model cannot fetch it.",
                code="invalid_image_url",
                param="image",
            )
    return GenerationRequest(
        model=model,
        prompt=prompt,
        count=count,
        response_format=response_format,
        output_format=output_format,
        width=width,
        height=height,
        seed=seed or None,
        watermark=watermark,
    )


def _reference_images(payload: dict[str, Any]) -> list[str]:
    """Documented (seedream-4): ``image`` is a URL string or a list of them. Not fetched."""
    image = payload.get("image")
    if image is None:
        return []
    images = [image] if isinstance(image, str) else image
    if not isinstance(images, list) or not all(isinstance(item, str) for item in images):
        raise _invalid(
            "image", "Invalid type for 'image': expected a string or an array of strings.", "invalid_type"
        )
    if not images or not all(images):
        raise _invalid("image", "Invalid 'image': expected non-empty URL strings.")
    return images


def _sequential_count(payload: dict[str, Any], n: int) -> int:
    # Documented (seedream-4): sequential_image_generation is "disabled" (default) or "auto".
    mode = _choice(payload, "sequential_image_generation", SEQUENTIAL_MODES) or "disabled"
    options = payload.get("sequential_image_generation_options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise _invalid(
            "sequential_image_generation_options",
            "Invalid type for 'sequential_image_generation_options': expected an object.",
            "invalid_type",
        )
    # Documented (seedream-4): options.max_images is an integer; its range 1-15 is inferred
    # (Volcengine). Checked in either mode: Volcengine ignores the options unless "auto", but a
    # value no mode accepts is still invalid.
    max_images = _integer(
        options,
        "max_images",
        1,
        MAX_SEQUENTIAL_IMAGES,
        param="sequential_image_generation_options.max_images",
    )
    if mode != "auto":
        return n
    # "auto" lets the model choose up to max_images; the emulator always returns that many.
    return max_images or DEFAULT_SEQUENTIAL_IMAGES


def _free_size(payload: dict[str, Any], model: ModelSpec) -> tuple[int, int]:
    """Inferred: OpenAI-style ``size`` ("WIDTHxHEIGHT"), or Stability's ``aspect_ratio``."""
    aspect_ratio = _choice(payload, "aspect_ratio", tuple(ASPECT_RATIOS)) if model.aspect_ratios else None
    size = payload.get("size")
    if size is None:
        return ASPECT_RATIOS[aspect_ratio] if aspect_ratio else model.size
    match = _SIZE_PATTERN.match(size) if isinstance(size, str) else None
    if match:
        width, height = int(match[1]), int(match[2])
        if MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE:
            return width, height
    raise _invalid(
        "size",
        f"Invalid value for 'size': {size!r}. Expected 'WIDTHxHEIGHT' with sides between "
        f"{MIN_SIDE} and {MAX_SIDE}.",
    )


def _invalid(param: str, message: str, code: str = "invalid_value") -> APIError:
    return APIError(400, message, code=code, param=param)


def _required_string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is None:
        raise _invalid(name, f"Missing required parameter: '{name}'.", "missing_required_parameter")
    return _optional_string(payload, name) or ""


def _optional_string(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _invalid(
        name,
        f"Invalid type for '{name}': expected a string, but got {type(value).__name__} instead.",
        "invalid_type",
    )


def _choice(payload: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise _invalid(
            name, f"Invalid value for '{name}': {value!r}. Supported values are: {', '.join(allowed)}."
        )
    return str(value)


def _integer(
    payload: dict[str, Any], name: str, minimum: int, maximum: int, param: str | None = None
) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    param = param or name
    # bool is an int subclass, but ``true`` is no valid count or seed.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(param, f"Invalid type for '{param}': expected an integer.", "invalid_type")
    if value < minimum:
        raise _invalid(
            param,
            f"Invalid '{param}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            "integer_below_min_value",
        )
    if value > maximum:
        raise _invalid(
            param,
            f"Invalid '{param}': integer above maximum value. Expected a value <= {maximum}, "
            f"but got {value} instead.",
            "integer_above_max_value",
        )
    return value
