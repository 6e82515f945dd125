"""``AzerionHook``: configuration and the API methods of the Azerion Intelligence API.

The hook resolves its settings (constructor, connection, defaults) and offers ``list_models``,
``generate_images``, ``download_image`` and ``test_connection``. How requests travel lives next
door, one concern per module: :mod:`.auth` (the key, bound to the API's origin), :mod:`.session`
(the ``requests`` session, proxies, sockets for cancel), :mod:`.calls` (the one call loop),
:mod:`.retry` (its rules), :mod:`.errors` (statuses and failures as typed errors) and
:mod:`.bodies` (reading responses). Request validation and response parsing live next to their
types in :mod:`airflow_provider_azerion.models`.
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
from airflow_provider_azerion.hooks.auth import header_safe_key
from airflow_provider_azerion.hooks.retry import RetryRules
from airflow_provider_azerion.models import ImageGenerationRequest, ImageGenerationResponse
from airflow_provider_azerion.redact import public_uri, scrub
from airflow_provider_azerion.settings import DEFAULT_SETTINGS, SETTINGS_BY_NAME

if TYPE_CHECKING:
    import requests

    from airflow_provider_azerion.hooks.calls import CallLoop
    from airflow_provider_azerion.hooks.errors import ApiErrors

__all__ = ["DEFAULT_SETTINGS", "AzerionHook", "build_base_url"]


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
    :param metrics: told of each 429 answered (``rate_limited()``) and each request sent again
        (``retried()``), e.g. the task's :class:`~airflow_provider_azerion.metrics.TaskMetrics`.
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "azerion"
    hook_name = "Azerion Intelligence"

    def __init__(
        self, conn_id: str = DEFAULT_CONN_ID, *, concurrency: int = 1, metrics: Any = None, **overrides: Any
    ) -> None:
        super().__init__()
        unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
        if unknown:
            raise AzerionValidationError(
                f"AzerionHook got unknown setting(s) {unknown}; known settings: {sorted(DEFAULT_SETTINGS)}"
            )
        self.conn_id = conn_id
        self.concurrency = max(int(concurrency), 1)
        self._overrides = {k: v for k, v in overrides.items() if v is not None}
        self._calls_lock = threading.Lock()
        self._cancelled = False
        self._metrics = metrics

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
        sources = [(f"connection {self.conn_id!r}", conn.password if conn else None)]
        sources += [(name, os.environ.get(name)) for name in API_KEY_ENV_VARS]
        source, key = next(((where, k) for where, k in sources if k and k.strip()), ("", None))
        if key is None:
            raise AzerionConfigurationError(
                f"No Azerion API key: connection {self.conn_id!r} "
                f"{'has no password' if conn else 'does not exist'} and neither "
                f"{' nor '.join(API_KEY_ENV_VARS)} is set. Put the key in the connection's password "
                f"(API key) field or export {API_KEY_ENV_VARS[0]}."
            )
        _mask(key.strip())
        key = header_safe_key(key, source)
        extras = (conn.extra_dejson if conn else {}) or {}
        settings = {name: self._setting(name, extras) for name in DEFAULT_SETTINGS}
        base_url = build_base_url(conn.host if conn else None, conn.port if conn else None, self.conn_id)
        return base_url, key, settings

    def _setting(self, name: str, extras: dict[str, Any]) -> Any:
        # Older connection forms stored extras as "extra__<conn_type>__<name>"; accept both.
        raw = self._overrides.get(name, extras.get(name, extras.get(f"extra__{self.conn_type}__{name}")))
        try:
            return SETTINGS_BY_NAME[name].parse(raw)
        except ValueError as problem:
            raise AzerionConfigurationError(
                f"Setting {name}={raw!r} of connection {self.conn_id!r} {problem}"
            ) from None

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
        return RetryRules.from_settings(self._config[2])

    @property
    def metrics(self) -> Any:
        """What counts 429 answers and resent requests (``rate_limited()``, ``retried()``), or ``None``."""
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: Any) -> None:
        self._metrics = metrics
        calls = self.__dict__.get("_calls")
        if calls is not None:
            calls.metrics = metrics

    # -- HTTP ------------------------------------------------------------------------------------

    @property
    def calls(self) -> CallLoop:
        """The hook's call loop over its pooled session (built once, shared by threads)."""
        calls = self.__dict__.get("_calls")
        if calls is None:
            with self._calls_lock:
                calls = self.__dict__.get("_calls")
                if calls is None:
                    calls = self.__dict__["_calls"] = self._build_calls()
        return calls

    def _build_calls(self) -> CallLoop:
        from airflow_provider_azerion.hooks.calls import CallLoop
        from airflow_provider_azerion.hooks.session import SocketTracker, build_session

        base_url, key, settings = self._config
        sockets = SocketTracker()
        user_agent = f"airflow-provider-azerion/{__version__}"
        pool_maxsize = max(settings["pool_maxsize"], self.concurrency)
        session = build_session(base_url, key, pool_maxsize, user_agent, sockets)
        timeout = (settings["connect_timeout"], settings["read_timeout"])
        calls = CallLoop(session, sockets, self.retry_rules, timeout, key, self.log, self._metrics)
        if self._cancelled:
            calls.cancel()
        return calls

    def _errors(self, what: str, *, list_models: bool = False) -> ApiErrors:
        from airflow_provider_azerion.hooks.errors import ApiErrors

        base_url, key, settings = self._config
        suggest = self._listed_model_ids if list_models else None
        return ApiErrors(what, base_url, key, settings["retry_on_timeout"], list_models=suggest)

    @property
    def session(self) -> requests.Session:
        """The hook's pooled ``requests`` session, with the key mounted for the API's origin."""
        return self.calls.session

    def close(self) -> None:
        """Release pooled connections. The hook opens a new session if used again."""
        calls = self.__dict__.pop("_calls", None)
        if calls is not None:
            calls.close()

    def cancel(self) -> None:
        """Stop every call of this hook now, from any thread (an operator's ``on_kill``).

        Waits between retries end, connections in use are shut down, and the calls raise
        :class:`~airflow_provider_azerion.exceptions.AzerionCancelledError`. Later calls raise it
        at once.
        """
        self._cancelled = True
        calls = self.__dict__.get("_calls")
        if calls is not None:
            calls.cancel()

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- API -------------------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """List the models the key may use (``GET /models``, which bills nothing).

        :return: the ``data`` entries, each with at least ``id``.
        """
        return self._list_models()

    def _list_models(self, rules: RetryRules | None = None) -> list[dict[str, Any]]:
        from airflow_provider_azerion.hooks.bodies import read_json

        what = "GET /models"
        body = self.calls.call(
            "GET", self._url("models"), lambda r: read_json(r, what), self._errors(what), rules=rules
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise AzerionResponseError("Azerion API GET /models returned no 'data' list")
        return data

    def _listed_model_ids(self) -> list[str]:
        """The ids ``GET /models`` lists, in one request: what a ``model_not_found`` error suggests."""
        models = self._list_models(RetryRules(max_attempts=1))
        return [str(m["id"]) for m in models if isinstance(m, dict) and m.get("id") is not None]

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
        from airflow_provider_azerion.hooks.bodies import read_json, request_id

        body = request.body(prompt)
        what = "POST /images/generations"

        def read(response: requests.Response) -> ImageGenerationResponse:
            return ImageGenerationResponse.from_api(read_json(response, what), request_id(response))

        errors = self._errors(what, list_models=True)
        return self.calls.call("POST", self._url("images/generations"), read, errors, json=body)

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
        from airflow_provider_azerion.hooks.bodies import read_limited
        from airflow_provider_azerion.hooks.errors import DownloadErrors

        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            scheme = parts.scheme if parts is not None else type(url).__name__
            raise AzerionValidationError(
                f"A result image URL must be an absolute http(s) URL; got one with scheme {scheme!r}"
            )
        limit = self._config[2]["max_download_bytes"]
        return self.calls.call(
            "GET",
            url,
            lambda response: read_limited(response, limit, parts.hostname or "?"),
            DownloadErrors(url),
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
            key = probe.__dict__.get("_config", (None, None))[1]
            return False, scrub(f"{type(err).__name__}: {err}", key)
        finally:
            probe.close()
        return True, f"Connected to {public_uri(probe.base_url)}; {len(models)} model(s) available."


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


def _mask(secret: str) -> None:
    """Register the key with Airflow's secrets masker; the Task SDK does not mask passwords itself."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older SDK layout
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(secret)
