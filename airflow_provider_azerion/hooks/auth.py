"""The API key: checked once, and sent as a bearer token to the API's own origin and nowhere else.

Result links are signed object-storage URLs on another host: they need no key and must never see
it. :class:`BearerAuth` adds the header per request, by origin (scheme, host and port), which
``requests`` cannot do for a session-wide ``auth``.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_azerion.exceptions import AzerionConfigurationError


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, lower-case host and port (default ports filled in) of ``url``."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def header_safe_key(key: str, source: str) -> str:
    """``key`` without surrounding whitespace, refused if an HTTP header cannot carry it.

    A key pasted with a trailing newline (``--conn-password $'key\\n'``) is common and harmless once
    stripped. What remains must be Latin-1 without control characters: otherwise ``http.client``
    raises at send time with the whole header, key included, in its message.

    :param key: the key as configured.
    :param source: where it came from, for the message (e.g. ``connection 'azerion_default'``).
    :raises AzerionConfigurationError: naming ``source`` and never any part of the key.
    """
    stripped = key.strip()
    for char in stripped:
        if ord(char) > 0xFF:
            problem = "a character outside Latin-1 (such as a typographic quote or dash)"
        elif unicodedata.category(char) == "Cc":
            problem = "a control character (such as a line break or tab)"
        else:
            continue
        raise AzerionConfigurationError(
            f"The API key of {source} contains {problem}, which an HTTP header cannot carry. "
            "Paste the key again exactly as the Azerion console shows it; nothing was sent."
        )
    return stripped


class BearerAuth:
    """Adds ``Authorization: Bearer <key>`` to requests for the API's own origin only.

    ``requests`` calls a session's auth once per request it prepares, not on redirects: there its
    ``rebuild_auth`` removes the ``Authorization`` header when the redirect leaves the original
    host (and, with ``trust_env`` on, may add ``~/.netrc`` credentials for the new host). So a
    redirect never carries the key to another host, and one that returns to the API's origin
    arrives without it.

    :param key: the API key, already checked by :func:`header_safe_key`.
    :param base_url: the API base URL; only its origin receives the key.
    """

    def __init__(self, key: str, base_url: str) -> None:
        self._key = key
        self._origin = origin(base_url)

    def __call__(self, request: Any) -> Any:
        if origin(request.url) == self._origin:
            request.headers["Authorization"] = f"Bearer {self._key}"
        else:
            request.headers.pop("Authorization", None)
        return request

    def __repr__(self) -> str:
        return f"BearerAuth(origin={self._origin!r})"
