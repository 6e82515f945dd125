"""``AzerionHook``: the one place that speaks HTTP to the Azerion Intelligence API.

It owns authentication, URLs, timeouts, retries and error mapping; operators and user code call
``list_models``, ``generate_images`` and ``download_image`` and get typed results or exceptions
from :mod:`airflow_provider_azerion.exceptions`.
"""

from __future__ import annotations

import json
import os
import re
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_azerion import __version__
from airflow_provider_azerion.constants import (
    API_KEY_ENV_VAR,
    DEFAULT_BASE_URL,
    DEFAULT_CONN_ID,
    MAX_PROMPT_LENGTH,
    RESPONSE_FORMATS,
)
from airflow_provider_azerion.exceptions import (
    AzerionAPIError,
    AzerionConfigurationError,
    AzerionConnectionError,
    AzerionError,
    AzerionRateLimitError,
    AzerionResponseError,
    AzerionValidationError,
    error_class_for_status,
)
from airflow_provider_azerion.hooks.retry import AzerionRetry, parse_retry_after
from airflow_provider_azerion.models import GeneratedImage, ImageGenerationResponse, Usage

if TYPE_CHECKING:
    import requests

#: Defaults for every setting a connection extra or a constructor argument may override.
DEFAULT_SETTINGS: dict[str, Any] = {
    "connect_timeout": 10.0,
    "read_timeout": 300.0,
    "max_attempts": 5,
    "backoff_factor": 1.0,
    "max_retry_wait": 60.0,
    "retry_on_timeout": False,
    "max_download_bytes": 128 * 1024 * 1024,
    "pool_maxsize": 32,
}
_SETTING_TYPES: dict[str, type] = {name: type(value) for name, value in DEFAULT_SETTINGS.items()}
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-azerion-request-id")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{80,}")
_ERROR_EXCERPT_CHARS = 200


class AzerionHook(BaseHook):
    """Talk to the Azerion Intelligence API with an Airflow connection of type ``azerion``.

    Settings resolve in this order: constructor arguments, then the connection's extras, then
    :data:`DEFAULT_SETTINGS`. The connection's host is the API base URL (default
    ``https://api.azerion.ai/v1``; a host with no path gets ``/v1``) and its password the API key.
    Without a password, or without the connection, the key comes from ``AZERION_API_KEY``.

    One pooled ``requests.Session`` per hook; it is safe to call the hook from several threads.

    :param conn_id: Airflow connection id.
    :param connect_timeout: seconds to wait for a TCP/TLS connection.
    :param read_timeout: seconds to wait for a response; image generation can take minutes.
    :param max_attempts: requests sent at most per call, first one included.
    :param backoff_factor: base of the exponential backoff between attempts, in seconds.
    :param max_retry_wait: cap, in seconds, on any single wait (Retry-After included).
    :param retry_on_timeout: also retry a generation whose response was lost after sending.
        Off by default because the server may already have generated and billed it.
    :param max_download_bytes: refuse image downloads larger than this.
    :param pool_maxsize: HTTP connections kept per host (size it for the threads sharing the hook).
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "azerion"
    hook_name = "Azerion Intelligence"

    def __init__(self, conn_id: str = DEFAULT_CONN_ID, **overrides: Any) -> None:
        super().__init__()
        unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
        if unknown:
            raise AzerionValidationError(
                f"AzerionHook got unknown setting(s) {unknown}; known settings: {sorted(DEFAULT_SETTINGS)}"
            )
        self.conn_id = conn_id
        self._overrides = {k: v for k, v in overrides.items() if v is not None}
        self._session_lock = threading.Lock()

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
        key = (conn.password if conn else None) or os.environ.get(API_KEY_ENV_VAR)
        if not key:
            raise AzerionConfigurationError(
                f"No Azerion API key: connection {self.conn_id!r} "
                f"{'has no password' if conn else 'does not exist'} and {API_KEY_ENV_VAR} is not set. "
                f"Put the key in the connection's password (API key) field or export {API_KEY_ENV_VAR}."
            )
        _mask(key)
        extras = (conn.extra_dejson if conn else {}) or {}
        settings = {name: self._setting(name, extras) for name in DEFAULT_SETTINGS}
        base_url = build_base_url(conn.host if conn else None, conn.port if conn else None, self.conn_id)
        return base_url, key, settings

    def _setting(self, name: str, extras: dict[str, Any]) -> Any:
        # Older connection forms stored extras as "extra__<conn_type>__<name>"; accept both.
        raw = self._overrides.get(name, extras.get(name, extras.get(f"extra__{self.conn_type}__{name}")))
        if raw is None or raw == "":
            return DEFAULT_SETTINGS[name]
        wanted = _SETTING_TYPES[name]
        try:
            if wanted is bool:
                return (
                    raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
                )
            value = wanted(raw)
        except (TypeError, ValueError):
            raise AzerionConfigurationError(
                f"Setting {name}={raw!r} of connection {self.conn_id!r} is not a valid {wanted.__name__}"
            ) from None
        if value < 0 or (value == 0 and name != "backoff_factor"):
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

    # -- transport -------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """The hook's pooled session, with the API key and retry rules mounted (built once)."""
        session = self.__dict__.get("_session")
        if session is None:
            with self._session_lock:  # threads share one hook: build the pool once
                session = self.__dict__.get("_session")
                if session is None:
                    session = self.__dict__["_session"] = self._build_session()
        return session

    def _build_session(self) -> requests.Session:
        import requests
        from requests.adapters import HTTPAdapter

        base_url, key, settings = self._config
        retry = AzerionRetry.build(
            max_attempts=settings["max_attempts"],
            backoff_factor=settings["backoff_factor"],
            max_retry_wait=settings["max_retry_wait"],
            retry_on_timeout=settings["retry_on_timeout"],
            logger=self.log,  # type: ignore[arg-type]  # Airflow's structlog logger quacks alike
        )
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=settings["pool_maxsize"], max_retries=retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(
            {"User-Agent": f"airflow-provider-azerion/{__version__}", "Accept": "application/json"}
        )
        session.auth = _BearerAuth(key, base_url)
        return session

    def close(self) -> None:
        """Release pooled connections. The hook opens a new session if used again."""
        session = self.__dict__.pop("_session", None)
        if session is not None:
            session.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one API call (retries included) and return its successful response."""
        import requests

        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
        settings = self._config[2]
        kwargs.setdefault("timeout", (settings["connect_timeout"], settings["read_timeout"]))
        where = f"{method} {_strip_query(url)}"
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.exceptions.ConnectTimeout:
            raise AzerionConnectionError(
                f"Could not connect to the Azerion API for {where} within {settings['connect_timeout']:g} s "
                f"after {settings['max_attempts']} attempt(s). Check the connection's host and the "
                "network; nothing was sent."
            ) from None
        except requests.exceptions.ReadTimeout:
            raise self._lost_response(
                method, where, f"no response within {settings['read_timeout']:g} s"
            ) from None
        except requests.exceptions.SSLError as err:
            raise AzerionConnectionError(f"TLS error talking to the Azerion API for {where}: {err}") from None
        except requests.exceptions.ConnectionError as err:
            if _never_sent(err):
                raise AzerionConnectionError(
                    f"Could not connect to the Azerion API for {where} after {settings['max_attempts']} "
                    f"attempt(s) ({_root_cause(err)}). Check the connection's host (now "
                    f"{self.base_url}) and that the service is reachable; nothing was sent."
                ) from None
            raise self._lost_response(method, where, f"connection dropped ({_root_cause(err)})") from None
        except requests.exceptions.InvalidURL as err:
            raise AzerionConfigurationError(f"Invalid Azerion URL for {where}: {err}") from None
        if response.status_code >= 400:
            raise self._api_error(response)
        return response

    def _lost_response(self, method: str, where: str, what: str) -> AzerionConnectionError:
        if method.upper() == "POST" and not self._config[2]["retry_on_timeout"]:
            advice = (
                "The server may have generated and billed the image already, so the hook did not "
                "resend it. Raise read_timeout, or set retry_on_timeout=True to resend automatically."
            )
        else:
            advice = "Retries are exhausted; the task's own retries may succeed later."
        return AzerionConnectionError(f"Azerion API {where}: {what}. {advice}", request_sent=True)

    def _api_error(self, response: requests.Response) -> AzerionAPIError:
        error_type, code, param, message = _parse_error_body(response)
        cls = error_class_for_status(response.status_code)
        kwargs: dict[str, Any] = {
            "error_type": error_type,
            "code": code,
            "param": param,
            "request_id": _request_id(response),
        }
        if cls is AzerionRateLimitError:
            kwargs["retry_after"] = parse_retry_after(response.headers)
        return cls(response.status_code, self._redact(message), **kwargs)

    def _redact(self, text: str) -> str:
        key = self._config[1]
        return text.replace(key, "***") if key else text

    def _json(self, response: requests.Response, what: str) -> Any:
        """Read and parse the JSON body of a successful response sent with ``stream=True``.

        Generation bodies carry whole images in base64 (tens of MiB), so the body is held at most
        twice at any moment: ``response.json()`` would hold it three times (the bytes ``content``
        joined from 10 KiB chunks, its decoded text, and the parsed strings) and keep the bytes
        alive on the response afterwards.
        """
        with response:
            try:
                # One read into one buffer: requests' ``content`` keeps a list of chunks and joins them.
                raw = response.raw.read(decode_content=True)
            except Exception as err:  # urllib3's ProtocolError, ReadTimeoutError, DecodeError...
                # urllib3 puts the readable part first: "Connection broken: IncompleteRead(...)".
                detail = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
                advice = "The task's retries may succeed."
                if response.request.method == "POST":
                    advice = f"The server may have generated and billed it already. {advice}"
                raise AzerionConnectionError(
                    f"Azerion API {what}: the response broke off after its headers "
                    f"({type(err).__name__}: {detail[:200]}). {advice}",
                    request_sent=True,
                ) from None
        size = len(raw)
        # Decoded the way requests' response.json() does; the bytes are dropped before parsing.
        encoding = response.encoding or json.detect_encoding(raw)
        try:
            text = str(raw, encoding, errors="replace")
        except LookupError:  # a charset Python does not know: JSON is UTF-8 anyway
            text = str(raw, "utf-8", errors="replace")
        del raw
        try:
            return json.loads(text)
        except ValueError:
            raise AzerionResponseError(
                f"Azerion API answered {what} with HTTP {response.status_code} but a body that is not "
                f"valid JSON ({size} bytes, possibly truncated) "
                f"[request id {_request_id(response) or 'unknown'}]. The task's retries may succeed."
            ) from None

    # -- API -------------------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """List the models the key may use (``GET /models``, which bills nothing).

        :return: the ``data`` entries, each with at least ``id``.
        """
        body = self._json(self._request("GET", "models", stream=True), "GET /models")
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
            ``aspect_ratio``, ``negative_prompt``, ``seed``, ``output_format``, ``quality``...).
        """
        validate_generation_args(prompt, model=model, response_format=response_format, style=style, **params)
        body: dict[str, Any] = {"model": model, "prompt": prompt, "response_format": response_format}
        if style is not None:
            body["style"] = style
        body.update({k: v for k, v in params.items() if v is not None})
        response = self._request("POST", "images/generations", json=body, stream=True)
        return _parse_generation(self._json(response, "POST /images/generations"), _request_id(response))

    def download_image(self, url: str) -> bytes:
        """Download a result image (``response_format="url"``) with the hook's retry rules.

        Failures before the body arrives are retried by the session like any call. A body that
        breaks off midway is fetched again too (up to ``max_attempts`` in all): a GET of a result
        costs nothing. The API key is only sent when the URL is on the API's own host.

        :param url: the ``url`` of a :class:`~airflow_provider_azerion.models.GeneratedImage`.
        :return: the image bytes, at most ``max_download_bytes`` of them.
        """
        import tenacity

        if urlsplit(url).scheme not in ("http", "https"):
            raise AzerionValidationError("Image URL must be http(s); got a URL with another scheme")
        settings = self._config[2]
        log = self.log

        def before_sleep(state: tenacity.RetryCallState) -> None:
            log.info(
                "Azerion download of %s broke off; retry %d in %.2f s",
                _strip_query(url),
                state.attempt_number,
                state.next_action.sleep if state.next_action else 0.0,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(settings["max_attempts"]),
            wait=tenacity.wait_random_exponential(
                multiplier=settings["backoff_factor"], max=settings["max_retry_wait"]
            ),
            retry=tenacity.retry_if_exception_type(_BrokenDownload),
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(self._download_once, url, settings["max_download_bytes"])

    def _download_once(self, url: str, limit: int) -> bytes:
        response = self._request("GET", url, stream=True, headers={"Accept": "image/*"})
        with response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise AzerionResponseError(
                    f"Image at {_strip_query(url)} is {int(declared)} bytes, over max_download_bytes={limit}"
                )
            chunks, size = [], 0
            try:
                for chunk in response.iter_content(chunk_size=1024 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise AzerionResponseError(
                            f"Image at {_strip_query(url)} exceeds max_download_bytes={limit}"
                        )
                    chunks.append(chunk)
            except AzerionError:
                raise
            except Exception as err:
                raise _BrokenDownload(
                    f"Download of {_strip_query(url)} broke off after {size} bytes ({type(err).__name__}). "
                    "The task's retries may succeed.",
                    request_sent=True,
                ) from None
        return b"".join(chunks)

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
            return False, probe._redact(f"{type(err).__name__}: {err}")
        finally:
            probe.close()
        return True, f"Connected to {probe.base_url}; {len(models)} model(s) available."


def build_base_url(host: str | None, port: int | None, conn_id: str = DEFAULT_CONN_ID) -> str:
    """Turn a connection's host (and port) into the API base URL.

    ``None`` gives the public API; a host without scheme gets ``https://`` (``http://`` on
    loopback, where the emulator runs); a host without path gets ``/v1``.
    """
    if not host:
        return DEFAULT_BASE_URL
    text = host.strip()
    if "://" not in text:
        bare = text.split("/", 1)[0].split(":", 1)[0]
        scheme = "http" if bare in ("localhost", "127.0.0.1", "::1") or bare.startswith("127.") else "https"
        text = f"{scheme}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AzerionConfigurationError(
            f"Connection {conn_id!r} host {host!r} is not an http(s) URL; use e.g. {DEFAULT_BASE_URL}"
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/") or "/v1"
    return f"{parts.scheme}://{netloc}{path}"


def validate_generation_args(
    prompt: Any, *, model: Any, response_format: Any = "b64_json", style: Any = None, **params: Any
) -> None:
    """Reject arguments the API would refuse, before anything is sent.

    :raises AzerionValidationError: with a message naming the argument and the rule.
    """
    if not isinstance(prompt, str):
        raise AzerionValidationError(f"prompt must be a str, got {type(prompt).__name__}")
    if not prompt.strip():
        raise AzerionValidationError("prompt is empty; describe the image to generate")
    if len(prompt) > MAX_PROMPT_LENGTH:
        raise AzerionValidationError(
            f"prompt is {len(prompt)} characters; the Azerion API accepts at most {MAX_PROMPT_LENGTH}"
        )
    if not isinstance(model, str) or not model.strip():
        raise AzerionValidationError("model must be a non-empty str, e.g. 'stable-image-core-1.1'")
    if response_format not in RESPONSE_FORMATS:
        raise AzerionValidationError(
            f"response_format must be one of {RESPONSE_FORMATS}, got {response_format!r}"
        )
    if style is not None and not isinstance(style, str):
        raise AzerionValidationError(f"style must be a str or None, got {type(style).__name__}")
    n = params.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10):
        raise AzerionValidationError(f"n must be an int from 1 to 10, got {n!r}")
    try:
        json.dumps(params)
    except (TypeError, ValueError) as err:
        raise AzerionValidationError(f"extra API parameters must be JSON-serialisable: {err}") from None


def _parse_generation(body: Any, request_id: str | None) -> ImageGenerationResponse:
    import pendulum

    if not isinstance(body, dict):
        raise AzerionResponseError("Azerion API returned a generation response that is not a JSON object")
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise AzerionResponseError(
            f"Azerion API returned no images (empty 'data') [request id {request_id or 'unknown'}]. "
            "The prompt may have been filtered; the task's retries may succeed."
        )
    images = []
    for item in data:
        item = item if isinstance(item, dict) else {}
        b64, url = item.get("b64_json"), item.get("url")
        if not isinstance(b64, str) and not isinstance(url, str):
            raise AzerionResponseError("Azerion API returned an image entry with neither b64_json nor url")
        images.append(
            GeneratedImage(
                b64_json=b64 if isinstance(b64, str) else None,
                url=url if isinstance(url, str) else None,
                revised_prompt=item.get("revised_prompt") or body.get("revised_prompt"),
            )
        )
    created = body.get("created")
    when = pendulum.from_timestamp(created) if isinstance(created, (int, float)) else pendulum.now("UTC")
    return ImageGenerationResponse(
        created=when, images=tuple(images), usage=Usage.from_api(body.get("usage")), request_id=request_id
    )


def _parse_error_body(response: requests.Response) -> tuple[str | None, str | None, str | None, str]:
    """Error type, code, param and message from any error body: Azerion's JSON, variants, or HTML."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if isinstance(error, dict) and error.get("message"):

        def text(v: Any) -> str | None:
            return None if v is None else str(v)

        return (
            text(error.get("type")),
            text(error.get("code")),
            text(error.get("param")),
            str(error["message"]),
        )
    excerpt = _BASE64_RUN.sub("<data elided>", response.text[:_ERROR_EXCERPT_CHARS])
    excerpt = " ".join(re.sub(r"<[^>]+>", " ", excerpt).split()) or "(empty body)"
    return None, None, None, f"{response.reason or 'error'} (non-JSON body: {excerpt!r})"


def _request_id(response: requests.Response) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        if response.headers.get(name):
            return response.headers[name]
    return None


def _never_sent(err: Exception) -> bool:
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    cause: Any = err.args[0] if err.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _root_cause(err: BaseException) -> str:
    cause: Any = err.args[0] if err.args else err
    cause = getattr(cause, "reason", cause)
    if getattr(cause, "args", None) and len(cause.args) > 1 and isinstance(cause.args[1], BaseException):
        cause = cause.args[1]
    text = str(cause)
    # urllib3 messages embed object reprs; keep the human part.
    text = re.sub(r"<[^>]*>: ", "", text)
    return f"{type(cause).__name__}: {text}"[:200]


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def _mask(secret: str) -> None:
    """Register the key with Airflow's secrets masker; the Task SDK does not mask passwords itself."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older SDK layout
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(secret)


class _BrokenDownload(AzerionConnectionError):
    """A download whose body broke off midway; safe to fetch again (a GET bills nothing)."""


class _BearerAuth:
    """Adds ``Authorization: Bearer`` only to requests for the API's own origin.

    Result URLs may live on a CDN or bucket: the key must never travel there.
    """

    def __init__(self, key: str, base_url: str) -> None:
        self._key = key
        self._origin = _origin(base_url)

    def __call__(self, request: Any) -> Any:
        if _origin(request.url) == self._origin:
            request.headers["Authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return f"_BearerAuth(origin={self._origin!r})"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port
