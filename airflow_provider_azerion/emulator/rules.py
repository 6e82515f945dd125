"""The emulator's own copy of the API's rules: the model catalogue, limits and defaults.

Kept apart from the provider's constants on purpose: the client's limits are what is under test,
so the emulator must not borrow them. Each rule says where it comes from: **documented** rules cite
the docs.azerion.ai page that states them; **inferred** ones say why we expect them. ``docs/API.md``
lists the same facts for people.

Pages cited below:

- create-image: https://docs.azerion.ai/api-reference/create-image
- seedream-4: https://docs.azerion.ai/api-reference/create-image/seedream-4
- error-codes: https://docs.azerion.ai/api-reference/error-codes
- authentication: https://docs.azerion.ai/getting-started/authentication
"""

from __future__ import annotations

from dataclasses import dataclass

# --- Requests common to every model -----------------------------------------------------------

#: Documented (create-image, seedream-4): "Maximum length is 4000 characters."
MAX_PROMPT_LENGTH = 4000
#: Documented (create-image): ``response_format`` is "b64_json" or "url".
RESPONSE_FORMATS = ("b64_json", "url")
#: Inferred (OpenAI's images API, which Azerion mirrors): ``n`` from 1 to 10. Azerion documents
#: ``n`` only for video.
MAX_IMAGES = 10
#: Inferred: encodings a request may pick with ``output_format`` (Stability's Stable Image Core).
OUTPUT_FORMATS = ("jpeg", "png", "webp")
#: Inferred (Stability's Stable Image Core): ``seed`` from 0 to 4294967294, 0 meaning random.
MAX_SEED = 4294967294
#: Inferred (OpenAI-style ``size``): "WIDTHxHEIGHT" with sides in this range, for models whose
#: page lists no sizes.
MIN_SIDE, MAX_SIDE = 16, 4096

# --- Stable Image Core --------------------------------------------------------------------------

#: Documented (create-image): the model of Azerion's own example request.
STABLE_IMAGE_CORE = "stable-image-core-1.1"
#: Inferred (Stability's Stable Image Core): its aspect ratios, rendered at about one megapixel.
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

# --- Seedream -------------------------------------------------------------------------------------

#: Documented (seedream-4): the model id.
SEEDREAM_4 = "bytedance-seedream-4"
#: Documented: a "Seedream 4.5" page exists in Azerion's docs; its contents are unseen, so the
#: model gets Seedream 4.0's rules (inferred).
SEEDREAM_4_5 = "bytedance-seedream-4-5"
#: Documented (seedream-4): ``size`` is one of "2K", "1024x1024", "512x512". That "2K" means
#: 2048x2048 is inferred (Volcengine's square 2K).
SEEDREAM_SIZES = {"2K": (2048, 2048), "1024x1024": (1024, 1024), "512x512": (512, 512)}
#: Documented (seedream-4): default "2K".
SEEDREAM_DEFAULT_SIZE = "2K"
#: Documented (seedream-4): ``watermark`` defaults to true.
SEEDREAM_DEFAULT_WATERMARK = True
#: Documented (seedream-4): ``sequential_image_generation`` is "disabled" (default) or "auto".
SEQUENTIAL_MODES = ("disabled", "auto")
#: Inferred (Volcengine's Seedream 4.0 reference): ``max_images`` from 1 to 15; Azerion's page only
#: gives examples (4, 5).
MAX_SEQUENTIAL_IMAGES = 15
#: Inferred (Volcengine): "auto" without ``max_images`` may return up to 15 images; the emulator
#: always returns the most it may.
DEFAULT_SEQUENTIAL_IMAGES = 15
#: Inferred: a reference ``image`` is fetched by the model provider, so it must be a URL it can
#: fetch or inline data (Volcengine accepts http(s) URLs and ``data:image/<format>;base64,`` URIs).
REFERENCE_IMAGE_SCHEMES = ("http://", "https://", "data:image/")
#: Inferred (Volcengine's usage): a Seedream image costs width * height / 256 output tokens
#: (16384 for 2048x2048), which is what its ``usage.output_tokens`` reports.
PIXELS_PER_TOKEN = 256

# --- Result links (response_format="url") ------------------------------------------------------

#: Inferred (Volcengine links carry ``X-Tos-Expires=86400``): links stay valid for 24 hours.
URL_EXPIRY_SECONDS = 86400
#: Inferred: the bucket in the path of Volcengine's result links.
RESULT_BUCKET = "ark-content-generation"


@dataclass(frozen=True)
class ModelSpec:
    """An emulated model and the request rules that differ between models.

    :param id: Model id, as sent in ``model``.
    :param owned_by: Who publishes it, as listed by ``/v1/models``.
    :param created: Unix time it was published, as listed by ``/v1/models``.
    :param response_format: ``response_format`` when the request has none.
    :param output_format: Image format when the request has no ``output_format``.
    :param size: Width and height when the request asks for no size.
    :param seedream: Seedream's rules apply: ``size`` from :data:`SEEDREAM_SIZES` only, ``watermark``,
        reference ``image``, sequential generation, and Volcengine's ``usage`` shape.
    :param aspect_ratios: Whether ``aspect_ratio`` sets the size (Stable Image Core).
    """

    id: str
    owned_by: str
    created: int
    response_format: str
    output_format: str
    size: tuple[int, int]
    seedream: bool = False
    aspect_ratios: bool = False


#: The catalogue of ``GET /v1/models``. Every model defaults to JPEG: the base64 in Azerion's own
#: example (create-image) starts with "/9j/", a JPEG signature, and Volcengine's links end in .jpeg.
#: ``owned_by`` and ``created`` are inferred (no page shows the model list's contents).
MODELS = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id=STABLE_IMAGE_CORE,
            owned_by="stability-ai",
            created=1727740800,
            # Documented (create-image): the example asks for b64_json; the default is inferred.
            response_format="b64_json",
            output_format="jpeg",
            size=ASPECT_RATIOS["1:1"],
            aspect_ratios=True,
        ),
        ModelSpec(
            id=SEEDREAM_4,
            owned_by="bytedance",
            created=1757030400,
            response_format="url",  # Documented (seedream-4): "url" (default).
            output_format="jpeg",
            size=SEEDREAM_SIZES[SEEDREAM_DEFAULT_SIZE],
            seedream=True,
        ),
        ModelSpec(
            id=SEEDREAM_4_5,
            owned_by="bytedance",
            created=1764288000,
            response_format="url",  # Inferred: as Seedream 4.0.
            output_format="jpeg",
            size=SEEDREAM_SIZES[SEEDREAM_DEFAULT_SIZE],
            seedream=True,
        ),
    )
}
