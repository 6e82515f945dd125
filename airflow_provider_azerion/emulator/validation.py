"""The emulated model catalogue, and how a generation request is checked against it.

Mirrors what Azerion documents (see ``API-NOTES.md``): ``model`` and ``prompt`` are required, the
prompt is at most 4000 characters, unknown models are a 404, invalid values a 400 naming the
parameter, and keys the emulator does not know pass through silently, as they do on the real API.
Messages follow the OpenAI wording that Azerion's gateway mirrors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_azerion.constants import DEFAULT_MODEL, MAX_PROMPT_LENGTH, RESPONSE_FORMATS

OUTPUT_FORMATS = ("jpeg", "png", "webp")
MIN_SIDE, MAX_SIDE = 16, 4096
MAX_IMAGES = 10
MAX_SEED = 4294967294
#: Stable Image Core's aspect ratios and the roughly one-megapixel sizes it renders them at.
ASPECT_RATIOS = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "21:9": (1536, 640),
    "9:21": (640, 1536),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "5:4": (1088, 896),
    "4:5": (896, 1088),
}
#: Seedream's named sizes.
NAMED_SIZES = {"1K": (1024, 1024), "2K": (2048, 2048), "4K": (4096, 4096)}
MAX_SEQUENTIAL_IMAGES = 15
_SIZE_PATTERN = re.compile(r"^(\d+)[xX](\d+)$")


@dataclass(frozen=True)
class ModelSpec:
    """An emulated model and its defaults.

    :param id: Model id, as sent in ``model``.
    :param owned_by: Who publishes it, as listed by ``/v1/models``.
    :param created: Unix time it was published, as listed by ``/v1/models``.
    :param response_format: ``response_format`` when the request has none.
    :param output_format: Image format when the request has no ``output_format``.
    :param size: Width and height when the request asks for no size.
    :param named_sizes: Whether ``size`` may be ``1K``, ``2K`` or ``4K`` (Seedream).
    :param aspect_ratios: Whether ``aspect_ratio`` sets the size (Stable Image Core).
    :param sequential: Whether ``sequential_image_generation="auto"`` may return several images.
    """

    id: str
    owned_by: str
    created: int
    response_format: str
    output_format: str
    size: tuple[int, int]
    named_sizes: bool = False
    aspect_ratios: bool = False
    sequential: bool = False


# Both default to JPEG: the base64 in Azerion's own example starts with "/9j/", a JPEG signature.
MODELS = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id=DEFAULT_MODEL,
            owned_by="stability-ai",
            created=1727740800,
            response_format="b64_json",
            output_format="jpeg",
            size=(1024, 1024),
            aspect_ratios=True,
        ),
        ModelSpec(
            id="bytedance-seedream-4",
            owned_by="bytedance",
            created=1757030400,
            response_format="url",
            output_format="jpeg",
            size=NAMED_SIZES["2K"],
            named_sizes=True,
            sequential=True,
        ),
    )
}


class APIError(Exception):
    """An error answered in Azerion's shape.

    :param status_code: HTTP status.
    :param message: Human-readable message; never contains the caller's API key.
    :param code: Machine-readable code, e.g. ``"model_not_found"``.
    :param param: The request parameter at fault, if any.
    :param error_type: Error type; derived from the status when not given.
    :param headers: Extra response headers, e.g. ``Retry-After``.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        code: str,
        param: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type or error_type_for(status_code)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "code": self.code,
                "param": self.param,
                "status_code": self.status_code,
            }
        }


def error_type_for(status_code: int) -> str:
    """Return the error ``type`` Azerion uses for an HTTP status."""
    if status_code >= 500:
        return "server_error"
    return {
        401: "authentication_error",
        403: "permission_error",
        429: "rate_limit_error",
    }.get(status_code, "invalid_request_error")


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
    """

    model: ModelSpec
    prompt: str
    count: int
    response_format: str
    output_format: str
    width: int
    height: int
    seed: int | None


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


def parse_generation_request(payload: dict[str, Any]) -> GenerationRequest:
    """Check a decoded ``/v1/images/generations`` body and apply the model's defaults.

    :param payload: The decoded JSON body.
    :raises APIError: 400 for a missing or invalid parameter, 404 for an unknown model.
    """
    model_id = _required_string(payload, "model")
    prompt = _required_string(payload, "prompt")
    model = MODELS.get(model_id)
    if model is None:
        raise APIError(
            404,
            f"The model `{model_id}` does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )
    if not prompt:
        raise _invalid(
            "prompt", "Invalid 'prompt': empty string. Expected a non-empty string.", "empty_string"
        )
    if len(prompt) > MAX_PROMPT_LENGTH:
        raise _invalid(
            "prompt",
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{MAX_PROMPT_LENGTH}, but got a string with length {len(prompt)} instead.",
            "string_above_max_length",
        )
    response_format = _choice(payload, "response_format", RESPONSE_FORMATS) or model.response_format
    output_format = _choice(payload, "output_format", OUTPUT_FORMATS) or model.output_format
    width, height = _size(payload, model)
    seed = _integer(payload, "seed", 0, MAX_SEED)
    return GenerationRequest(
        model=model,
        prompt=prompt,
        count=_count(payload, model),
        response_format=response_format,
        output_format=output_format,
        width=width,
        height=height,
        seed=seed or None,
    )


def _invalid(param: str, message: str, code: str = "invalid_value") -> APIError:
    return APIError(400, message, code=code, param=param)


def _required_string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is None:
        raise _invalid(name, f"Missing required parameter: '{name}'.", "missing_required_parameter")
    if not isinstance(value, str):
        raise _invalid(
            name,
            f"Invalid type for '{name}': expected a string, but got {type(value).__name__} instead.",
            "invalid_type",
        )
    return value


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


def _count(payload: dict[str, Any], model: ModelSpec) -> int:
    n = _integer(payload, "n", 1, MAX_IMAGES) or 1
    if not model.sequential:
        return n
    mode = _choice(payload, "sequential_image_generation", ("disabled", "auto"))
    if mode != "auto":
        return n
    options = payload.get("sequential_image_generation_options") or {}
    if not isinstance(options, dict):
        raise _invalid(
            "sequential_image_generation_options",
            "Invalid type for 'sequential_image_generation_options': expected an object.",
            "invalid_type",
        )
    # Seedream's "auto" lets the model choose up to max_images; the emulator always returns the most.
    max_images = _integer(
        options,
        "max_images",
        1,
        MAX_SEQUENTIAL_IMAGES,
        param="sequential_image_generation_options.max_images",
    )
    return max_images or MAX_SEQUENTIAL_IMAGES


def _size(payload: dict[str, Any], model: ModelSpec) -> tuple[int, int]:
    aspect_ratio = None
    if model.aspect_ratios:
        aspect_ratio = _choice(payload, "aspect_ratio", tuple(ASPECT_RATIOS))
    size = payload.get("size")
    if size is None:
        return ASPECT_RATIOS[aspect_ratio] if aspect_ratio else model.size
    if model.named_sizes and isinstance(size, str) and size.upper() in NAMED_SIZES:
        return NAMED_SIZES[size.upper()]
    match = _SIZE_PATTERN.match(size) if isinstance(size, str) else None
    if match:
        width, height = int(match[1]), int(match[2])
        if MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE:
            return width, height
    named = ", or one of " + ", ".join(NAMED_SIZES) if model.named_sizes else ""
    raise _invalid(
        "size",
        f"Invalid value for 'size': {size!r}. Expected 'WIDTHxHEIGHT' with sides between "
        f"{MIN_SIDE} and {MAX_SIDE}{named}.",
    )
