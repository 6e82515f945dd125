"""Secrets out of any text a person may read: keys, signed URLs' queries, base64 payloads.

The hook (log lines, exception messages) and the Images tab (pages, errors) share these, so what
counts as secret is decided once. Signed result links carry their credentials in the query
string; a URL that reaches any text keeps only its scheme, host and path.

Light on purpose (standard library only).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>?#]*)[?#][^\s'\"<>]*")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{80,}")
# A quoted request line as urllib3 logs it: "GET /path?X-Tos-Signature=... HTTP/1.1".
_REQUEST_LINE_QUERY = re.compile(r'("[A-Z]+ [^\s?"]*)\?[^\s"]*')
#: What a masked secret reads as.
MASK = "***"


def strip_query(url: str) -> str:
    """``url`` without its query string and fragment (they may hold a signature)."""
    return re.split(r"[?#]", url, maxsplit=1)[0]


def public_uri(uri: str) -> str:
    """``uri`` without user info, query string or fragment: what a page or a log may show."""
    parts = urlsplit(uri)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def secret_forms(secret: str) -> list[str]:
    """Every spelling of ``secret`` that may appear in a text, longest first.

    A key pasted with a trailing newline shows up as itself, stripped, or escaped inside the
    ``repr`` of a header value (``b'Bearer key\\n'``).
    """
    forms = {secret, secret.strip(), repr(secret)[1:-1], repr(secret.encode("utf-8", "replace"))[2:-1]}
    return sorted((form for form in forms if len(form) >= 4), key=len, reverse=True)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every URL's query string elided and each of ``secrets`` masked."""
    text = _URL_QUERY.sub(lambda m: f"{m.group(1)}?<query elided>", text)
    for secret in secrets:
        if secret:
            for form in secret_forms(secret):
                text = text.replace(form, MASK)
    return text


def elide_request_line_query(text: str) -> str:
    """``text`` with the query of a quoted request line (``"GET /path?sig=..."``) elided.

    urllib3 logs request lines with a path but no scheme, which :func:`scrub` does not see as URLs.
    """
    return _REQUEST_LINE_QUERY.sub(r"\1?<query elided>", text)


def elide_base64(text: str) -> str:
    """``text`` with long base64-looking runs (image payloads, tokens) replaced by a marker."""
    return _BASE64_RUN.sub("<data elided>", text)
