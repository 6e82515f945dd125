"""Signed, expiring result links, shaped like the Volcengine object-storage (TOS) links of Seedream.

A link looks like::

    http://127.0.0.1:PORT/ark-content-generation/<uuid>.<ext>?X-Tos-Algorithm=TOS4-HMAC-SHA256
        &X-Tos-Credential=<key>%2F<yyyymmdd>%2Femulator%2Ftos%2Frequest&X-Tos-Date=<yyyymmddThhmmssZ>
        &X-Tos-Expires=<seconds>&X-Tos-SignedHeaders=host&X-Tos-Signature=<hex>

The signature is an HMAC-SHA256, keyed by a secret of the emulator, over the path and the other
query parameters (sorted, so a client may reorder them). It is not TOS's real algorithm, which
also signs the host: the emulator only needs a link that cannot be altered or outlive its expiry.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

ALGORITHM = "TOS4-HMAC-SHA256"
#: Looks like a TOS access key id; it grants nothing anywhere.
ACCESS_KEY_ID = "AKLTemulator"
_SIGNATURE = "X-Tos-Signature"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_REQUIRED = ("X-Tos-Algorithm", "X-Tos-Credential", "X-Tos-Date", "X-Tos-Expires", _SIGNATURE)


def sign_link(origin: str, path: str, secret: bytes, now: float, expires: int) -> str:
    """Return the signed URL of ``path`` on ``origin``, valid for ``expires`` seconds from ``now``.

    :param origin: Scheme, host and port, e.g. ``http://127.0.0.1:8081``.
    :param path: Absolute path of the object, e.g. ``/ark-content-generation/<name>``.
    :param secret: The signing key.
    :param now: Unix time the link is signed at (whole seconds are kept).
    :param expires: Seconds the link stays valid.
    """
    signed_at = time.gmtime(now)
    params = {
        "X-Tos-Algorithm": ALGORITHM,
        "X-Tos-Credential": f"{ACCESS_KEY_ID}/{time.strftime('%Y%m%d', signed_at)}/emulator/tos/request",
        "X-Tos-Date": time.strftime(_DATE_FORMAT, signed_at),
        "X-Tos-Expires": str(int(expires)),
        "X-Tos-SignedHeaders": "host",
    }
    signature = _signature(path, list(params.items()), secret)
    query = urlencode({**params, _SIGNATURE: signature}, quote_via=quote, safe="")
    return f"{origin}{path}?{query}"


@dataclass(frozen=True)
class LinkCheck:
    """The verdict on a link: ``valid``, or why not (``problem``, one of ``"signature"``, ``"expired"``).

    :param problem: ``None`` for a valid link.
    """

    problem: str | None

    @property
    def valid(self) -> bool:
        """Whether the link may be served."""
        return self.problem is None


def check_link(path: str, query_string: str, secret: bytes, now: float) -> LinkCheck:
    """Check a request for a signed link: its signature, then its expiry.

    The signature is checked first, so a link whose ``X-Tos-Expires`` was raised is a bad signature.

    :param path: The request path.
    :param query_string: The raw query string (without ``?``).
    :param secret: The signing key.
    :param now: The current Unix time.
    """
    pairs = parse_qsl(query_string, keep_blank_values=True)
    values = dict(pairs)
    if any(name not in values for name in _REQUIRED):
        return LinkCheck("signature")
    unsigned = [(name, value) for name, value in pairs if name != _SIGNATURE]
    expected = _signature(path, unsigned, secret)
    if not hmac.compare_digest(expected.encode(), values[_SIGNATURE].encode()):
        return LinkCheck("signature")
    try:
        signed_at = calendar.timegm(time.strptime(values["X-Tos-Date"], _DATE_FORMAT))
        expires = int(values["X-Tos-Expires"])
    except ValueError:  # Only reachable with the emulator's own key: a bug, not a client's fault.
        return LinkCheck("signature")
    if now >= signed_at + expires:
        return LinkCheck("expired")
    return LinkCheck(None)


def _signature(path: str, params: list[tuple[str, str]], secret: bytes) -> str:
    canonical = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in sorted(params))
    return hmac.new(secret, f"GET\n{path}\n{canonical}".encode(), hashlib.sha256).hexdigest()
