"""``AzerionHook``: configuration and the API methods of the Azerion Intelligence API.

The hook resolves its settings (constructor, connection, defaults) and offers ``list_models``,
``generate_images``, ``download_image`` and ``test_connection``. How requests travel (session,
key, the one retry loop, error mapping) lives in :mod:`.transport`; the retry rules in
:mod:`.retry`; request validation and response parsing next to their types in
:mod:`airflow_provider_azerion.models`.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_azerion import __version__
from airflow_provider_azerion.constants import API_KEY_ENV_VARS, DEFAULT_BASE_URL, DEFAULT_CONN_ID
from airflow_provider_azerion.exceptions import (
    AzerionConfigurationError,
    AzerionError,
    AzerionResponseError,
    AzerionValidationError,
)
from airflow_provider_azerion.hooks.retry import RetryRules
from airflow_provider_azerion.models import ImageGenerationRequest, ImageGenerationResponse
from airflow_provider_azerion.settings import DEFAULT_SETTINGS, SETTINGS_BY_NAME

if TYPE_CHECKING:
    import requests

    from airflow_provider_azerion.hooks.transport import Transport

__all__ = ["DEFAULT_SETTINGS", "AzerionHook", "build_base_url", "validate_generation_args"]


class AzerionHook(BaseHook):
    """Talk to the Azerion Intelligence API with an Airflow connection of type ``azerion``.

    Settings resolve in this order: constructor arguments, then the connection's extras, then
    :data:`~airflow_provider_azerion.settings.DEFAULT_SETTINGS`. The connection's host is the API
    base URL (default ``https://api.azerion.ai/v1``; a host with no path gets ``/v1``) and its
    password the API key. Without a password, or without the connection, the key comes from
    ``AZERION_API_KEY`` or else ``AZERION_ACCESS_TOKEN``.

    One pooled session per hook; it is safe to call the hook from several threads.

    :param conn_id: Airflow connection id.
    :param concurrency: how many threads will share this hook; the HTTP pool keeps at least that
        many connections whatever ``pool_maxsize`` says.
    :param connect_timeout: seconds to wait for a TCP/TLS connection.
    :param read_timeout: seconds to wait for a response; image generation can take minutes.
    :param max_attempts: requests sent at most per call (or download), first one included,
        whatever fails.
    :param backoff_factor: base of the exponential backoff between attempts, in seconds.
    :param max_retry_wait: longest single wait; a server asking (``Retry-After``) for longer ends
        the call at once with an error carrying its advised wait.
    :param retry_on_timeout: also resend a generation whose response was lost after sending.
        Off by default because the server may already have generated and billed it.
    :param max_download_bytes: refuse image downloads larger than this.
    :param pool_maxsize: HTTP connections kept per host.
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "azerion"
    hook_name = "Azerion Intelligence"

    def __init__(self, conn_id: str = DEFAULT_CONN_ID, *, concurrency: int = 1, **overrides: Any) -> None:
        super().__init__()
        unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
        if unknown:
            raise AzerionValidationError(
                f"AzerionHook got unknown setting(s) {unknown}; known settings: {sorted(DEFAULT_SETTINGS)}"
            )
        self.conn_id = conn_id
        self.concurrency = max(int(concurrency), 1)
        self._overrides = {k: v for k, v in overrides.items() if v is not None}
        self._transport_lock = threading.Lock()
        self._cancelled = False

    def __repr__(self) -> str:
        return f"AzerionHook(conn_id={self.conn_id!r})"

    # -- configuration ---------------------------------------------------------------------------

    @cached_property
    def _config(self) -> tuple[str, str, dict[str, Any]]:
        """Base URL, API key and settings, read once from the connection and the environment."""
        try:
            conn = self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            conn = None
        key = conn.password if conn else None
        for name in API_KEY_ENV_VARS:
            key = key or os.environ.get(name)
        if not key:
            raise AzerionConfigurationError(
                f"No Azerion API key: connection {self.conn_id!r} "
                f"{'has no password' if conn else 'does not exist'} and neither "
                f"{' nor '.join(API_KEY_ENV_VARS)} is set. Put the key in the connection's password "
                f"(API key) field or export {API_KEY_ENV_VARS[0]}."
            )
        _mask(key)
        extras = (conn.extra_dejson if conn else {}) or {}
        settings = {name: self._setting(name, extras) for name in DEFAULT_SETTINGS}
        base_url = build_base_url(conn.host if conn else None, conn.port if conn else None, self.conn_id)
        return base_url, key, settings

    def _setting(self, name: str, extras: dict[str, Any]) -> Any:
        # Older connection forms stored extras as "extra__<conn_type>__<name>"; accept both.
        raw = self._overrides.get(name, extras.get(name, extras.get(f"extra__{self.conn_type}__{name}")))
        spec = SETTINGS_BY_NAME[name]
        if raw is None or raw == "":
            return spec.default
        try:
            if spec.kind is bool:
                return (
                    raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
                )
            value = spec.kind(raw)
        except (TypeError, ValueError):
            raise AzerionConfigurationError(
                f"Setting {name}={raw!r} of connection {self.conn_id!r} is not a valid {spec.kind.__name__}"
            ) from None
        if value < 0 or (value == 0 and not spec.allow_zero):
            raise AzerionConfigurationError(
                f"Setting {name}={raw!r} of connection {self.conn_id!r} must be positive"
            )
        return value

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``https://api.azerion.ai/v1``."""
        return self._config[0]

    @property
    def settings(self) -> dict[str, Any]:
        """The effective timeouts and retry settings (a copy)."""
        return dict(self._config[2])

    @property
    def retry_rules(self) -> RetryRules:
        """The retry rules every call of this hook follows."""
        settings = self._config[2]
        return RetryRules(
            max_attempts=settings["max_attempts"],
            backoff_factor=settings["backoff_factor"],
            max_retry_wait=settings["max_retry_wait"],
            retry_on_timeout=settings["retry_on_timeout"],
        )

    # -- transport -------------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The hook's HTTP machinery (built once, shared by threads)."""
        transport = self.__dict__.get("_transport")
        if transport is None:
            with self._transport_lock:
                transport = self.__dict__.get("_transport")
                if transport is None:
                    transport = self.__dict__["_transport"] = self._build_transport()
        return transport

    def _build_transport(self) -> Transport:
        from airflow_provider_azerion.hooks.transport import Transport

        base_url, key, settings = self._config
        transport = Transport(
            base_url,
            key,
            self.retry_rules,
            timeout=(settings["connect_timeout"], settings["read_timeout"]),
            pool_maxsize=max(settings["pool_maxsize"], self.concurrency),
            user_agent=f"airflow-provider-azerion/{__version__}",
            logger=self.log,
        )
        if self._cancelled:
            transport.cancel()
        return transport

    @property
    def session(self) -> requests.Session:
        """The hook's pooled ``requests`` session, with the key mounted for the API's origin."""
        return self.transport.session

    def close(self) -> None:
        """Release pooled connections. The hook opens a new session if used again."""
        transport = self.__dict__.pop("_transport", None)
        if transport is not None:
            transport.close()

    def cancel(self) -> None:
        """Stop every call of this hook now, from any thread (an operator's ``on_kill``).

        Waits between retries end, connections in use are shut down, and the calls raise
        :class:`~airflow_provider_azerion.exceptions.AzerionCancelledError`. Later calls raise it
        at once.
        """
        self._cancelled = True
        transport = self.__dict__.get("_transport")
        if transport is not None:
            transport.cancel()

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- API -------------------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """List the models the key may use (``GET /models``, which bills nothing).

        :return: the ``data`` entries, each with at least ``id``.
        """
        from airflow_provider_azerion.hooks.transport import ErrorBuilder, read_json

        what = "GET /models"
        body = self.transport.call(
            "GET", self._url("models"), lambda r: read_json(r, what), ErrorBuilder(what, self.transport)
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise AzerionResponseError("Azerion API GET /models returned no 'data' list")
        return data

    def generate_images(
        self,
        prompt: str,
        *,
        model: str,
        response_format: str = "b64_json",
        style: str | None = None,
        **params: Any,
    ) -> ImageGenerationResponse:
        """Generate images from a prompt (``POST /images/generations``).

        Arguments are checked locally first, so a bad call sends nothing and costs nothing.

        :param prompt: text description, at most 4000 characters.
        :param model: model id, e.g. ``stable-image-core-1.1``.
        :param response_format: ``b64_json`` (inline) or ``url`` (download with :meth:`download_image`).
        :param style: e.g. ``vivid``; omitted from the request when ``None``.
        :param params: further API parameters passed through untouched (``size``, ``n``,
            ``aspect_ratio``, ``negative_prompt``, ``seed``, ``output_format``, ``watermark``...).
        """
        request = ImageGenerationRequest.of(model, response_format, style, **params)
        return self.generate(request, prompt)

    def generate(self, request: ImageGenerationRequest, prompt: str) -> ImageGenerationResponse:
        """Generate images for ``prompt`` with an already validated request."""
        from airflow_provider_azerion.hooks.transport import ErrorBuilder, read_json, request_id

        body = request.body(prompt)
        what = "POST /images/generations"

        def read(response: requests.Response) -> ImageGenerationResponse:
            return ImageGenerationResponse.from_api(read_json(response, what), request_id(response))

        return self.transport.call(
            "POST", self._url("images/generations"), read, ErrorBuilder(what, self.transport), json=body
        )

    def download_image(self, url: str) -> bytes:
        """Download a result image (``response_format="url"``) within one retry budget.

        Result links are signed object-storage URLs, usually on another host, that expire: the API
        key is sent only when the link is on the API's own origin, and no error or log line shows
        the link's query string. At most ``max_attempts`` requests are sent, whatever fails (a GET
        bills nothing, so a body that breaks off is fetched again).

        :param url: the ``url`` of a :class:`~airflow_provider_azerion.models.GeneratedImage`.
        :return: the image bytes, at most ``max_download_bytes`` of them.
        :raises AzerionDownloadError: when the link cannot be fetched (expired, gone, unreachable).
        """
        from airflow_provider_azerion.hooks.transport import DownloadErrors, read_limited

        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            scheme = parts.scheme if parts is not None else type(url).__name__
            raise AzerionValidationError(
                f"A result image URL must be an absolute http(s) URL; got one with scheme {scheme!r}"
            )
        limit = self._config[2]["max_download_bytes"]
        return self.transport.call(
            "GET",
            url,
            lambda response: read_limited(response, limit, parts.hostname or "?"),
            DownloadErrors(url, self.transport),
            headers={"Accept": "image/*"},
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check URL and key with ``GET /models`` (bills nothing). Used by the UI's Test button.

        Makes a single attempt, so an unreachable host is reported at once rather than after the
        retry schedule.
        """
        probe = type(self)(self.conn_id, **{**self._overrides, "max_attempts": 1})
        try:
            models = probe.list_models()
        except AzerionError as err:
            return False, str(err)
        except Exception as err:
            from airflow_provider_azerion.hooks.transport import scrub

            key = probe.__dict__.get("_config", (None, None))[1]
            return False, scrub(f"{type(err).__name__}: {err}", key)
        finally:
            probe.close()
        return True, f"Connected to {probe.base_url}; {len(models)} model(s) available."


def build_base_url(host: str | None, port: int | None, conn_id: str = DEFAULT_CONN_ID) -> str:
    """Turn a connection's host (and port) into the API base URL.

    ``None`` gives the public API; a host without scheme gets ``https://`` (``http://`` on
    loopback, where the emulator runs, IPv6 ``::1`` included); a host without path gets ``/v1``.
    """
    if not host:
        return DEFAULT_BASE_URL
    text = host.strip()
    if "://" not in text:
        text = f"{'http' if _is_loopback(text) else 'https'}://{_bracket_bare_ipv6(text)}"
    try:
        parts = urlsplit(text)
        hostname, existing_port = parts.hostname, parts.port
    except ValueError:
        hostname = existing_port = None
    if not hostname or parts.scheme not in ("http", "https"):
        raise AzerionConfigurationError(
            f"Connection {conn_id!r} host {host!r} is not an http(s) URL; use e.g. {DEFAULT_BASE_URL}"
        )
    netloc = parts.netloc
    if port and existing_port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/") or "/v1"
    return f"{parts.scheme}://{netloc}{path}"


def _bracket_bare_ipv6(text: str) -> str:
    """``::1/v1`` -> ``[::1]/v1``: a bare IPv6 address needs brackets inside a URL."""
    address, slash, rest = text.partition("/")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return text
    return f"[{address}]{slash}{rest}"


def _is_loopback(text: str) -> bool:
    """Whether a scheme-less host (``localhost:8080``, ``127.0.0.1``, ``::1``, ``[::1]:80``) is loopback."""
    netloc = text.split("/", 1)[0]
    if netloc.startswith("["):
        name = netloc[1:].split("]", 1)[0]
    elif netloc.count(":") > 1:  # a bare IPv6 address
        name = netloc
    else:
        name = netloc.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def validate_generation_args(
    prompt: Any, *, model: Any, response_format: Any = "b64_json", style: Any = None, **params: Any
) -> None:
    """Reject arguments the API would refuse, before anything is sent.

    :raises AzerionValidationError: with a message naming the argument and the rule.
    """
    ImageGenerationRequest.check_prompt(prompt)
    ImageGenerationRequest.of(model, response_format, style, **params)


def _mask(secret: str) -> None:
    """Register the key with Airflow's secrets masker; the Task SDK does not mask passwords itself."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older SDK layout
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(secret)
