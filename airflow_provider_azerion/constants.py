"""Facts about the Azerion Intelligence API, defined once for the whole package."""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.azerion.ai/v1"
DEFAULT_CONN_ID = "azerion_default"
API_KEY_ENV_VAR = "AZERION_API_KEY"
#: Azerion's examples read the key from AZERION_API_KEY "or AZERION_ACCESS_TOKEN", in that order.
API_KEY_ENV_VARS = (API_KEY_ENV_VAR, "AZERION_ACCESS_TOKEN")
MAX_PROMPT_LENGTH = 4000
DEFAULT_MODEL = "stable-image-core-1.1"
RESPONSE_FORMATS = ("b64_json", "url")
#: Most prompts one task generates unless its ``max_prompts`` says otherwise (the spend guard).
DEFAULT_MAX_PROMPTS = 1000
